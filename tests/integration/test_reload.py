"""Config hot reload: the watcher (every editor save style), the modes, the
restart path (same pid, sockets inherited, shutdown then 1012), rollback of
a config that fails to start, secret rotation, snapshots in SQLite.

Reloads are detected by a snapshot row appearing (polled with a deadline);
only where nothing must happen (touch) do we wait the debounce window plus
a margin and assert that no row appeared."""

import json
import os
import signal
import sqlite3
import subprocess
import shutil
import time

import pytest

from harness import clawgate_only

pytestmark = clawgate_only("config lifecycle of clawgate")

DEBOUNCE_MS = 150
QUIET_S = DEBOUNCE_MS / 1000.0 * 3 + 0.5   # debounce + margin


def base_config(**gateway):
    g = {"mode": "local", "reload": {"debounceMs": DEBOUNCE_MS}}
    g.update(gateway)
    return {"gateway": g}


def db_path(gw):
    return os.path.join(gw.state_dir, "state", "clawgate.sqlite")


def rows(gw):
    """All snapshot rows, oldest first (read-only connection)."""
    con = sqlite3.connect("file:%s?mode=ro" % db_path(gw), uri=True,
                          timeout=5)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(
            "SELECT * FROM config_snapshots ORDER BY id")]
    finally:
        con.close()


def wait_rows(gw, n, timeout=10.0):
    """Poll until there are at least n rows; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        r = rows(gw)
        if len(r) >= n:
            return r
        if time.monotonic() > deadline:
            raise AssertionError("expected %d snapshot rows, have %d: %r\n"
                                 "stderr:\n%s" % (n, len(r), r,
                                                  gw.stderr()[-3000:]))
        time.sleep(0.02)


def wait_log(gw, text, timeout=10.0, count=1):
    deadline = time.monotonic() + timeout
    while True:
        if gw.output().count(text) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError("log line %r not seen; stderr:\n%s" % (
                text, gw.stderr()[-3000:]))
        time.sleep(0.02)


def wait_ready_again(gw, timeout=15.0):
    import requests
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if gw.http("GET", "/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.02)
    raise AssertionError("not ready again; stderr:\n" + gw.stderr()[-3000:])


def write_config(gw, cfg):
    with open(gw.config_path, "w") as f:
        f.write(json.dumps(cfg, indent=2))


def with_origins(cfg, *origins):
    c = json.loads(json.dumps(cfg))
    c["gateway"].setdefault("controlUi", {})["allowedOrigins"] = \
        list(origins)
    return c


@pytest.fixture
def gw(launcher):
    return launcher.start(config=base_config(),
                          env={"CLAWGATE_RESTART_COOLDOWN_MS": "0"})


# ---- the watcher ------------------------------------------------------------

def test_startup_row(gw):
    r = wait_rows(gw, 1)
    assert r[0]["source"] == "startup" and r[0]["outcome"] == "started"
    assert len(r[0]["hash"]) == 64


def test_editor_save_styles_each_one_reload(gw):
    """Each save style gives exactly one reload (one new row)."""
    path = gw.config_path
    cfg = base_config()
    n = len(wait_rows(gw, 1))
    text = [0]

    def content():
        text[0] += 1
        return json.dumps(with_origins(cfg, "http://o%d" % text[0]),
                          indent=2)

    def in_place():
        with open(path, "w") as f:
            f.write(content())

    def rename_over():
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(content())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def sed_i():
        old = "http://o%d" % text[0]
        text[0] += 1
        subprocess.run(["sed", "-i", "s|%s|http://o%d|" % (old, text[0]),
                        path], check=True)

    def backup_rename():
        os.rename(path, path + "~")
        with open(path, "w") as f:
            f.write(content())
        os.unlink(path + "~")

    def cp_over():
        other = os.path.join(gw.state_dir, "other.json")
        with open(other, "w") as f:
            f.write(content())
        subprocess.run(["cp", other, path], check=True)

    def quick_writes():
        for _ in range(20):
            with open(path, "w") as f:
                f.write(content())

    for style in (in_place, rename_over, sed_i, backup_rename, cp_over,
                  quick_writes):
        style()
        r = wait_rows(gw, n + 1)
        time.sleep(QUIET_S)     # prove that no second reload follows
        r = rows(gw)
        assert len(r) == n + 1, (style.__name__, r[n:])
        assert r[-1]["outcome"] == "applied", (style.__name__, r[-1])
        assert "gateway.controlUi.allowedOrigins" in r[-1]["paths"]
        n += 1
    # the last of the 20 quick writes is what runs
    c = gw.connect()
    got = c.call("config.get")
    assert got["config"]["gateway"]["controlUi"]["allowedOrigins"] == \
        ["http://o%d" % text[0]]
    assert got["appliedConfigHash"] == r[-1]["hash"]


def test_empty_file_is_a_write_in_progress(gw):
    """An editor's truncate before its write: the empty file is not
    recorded as a rejected snapshot; the write that follows applies."""
    n = len(wait_rows(gw, 1))
    open(gw.config_path, "w").close()
    deadline = time.monotonic() + 30
    while "is empty (a write in progress?)" not in gw.output():
        assert time.monotonic() < deadline, gw.output()[-2000:]
        time.sleep(0.02)
    assert len(rows(gw)) == n
    write_config(gw, with_origins(base_config(), "http://after-empty"))
    r = wait_rows(gw, n + 1)
    assert r[n]["outcome"] == "applied", r[n:]
    assert "gateway.controlUi.allowedOrigins" in r[n]["paths"]


def test_touch_is_no_reload(gw):
    n = len(wait_rows(gw, 1))
    subprocess.run(["touch", gw.config_path], check=True)
    time.sleep(QUIET_S)
    assert len(rows(gw)) == n
    assert "config change detected" not in gw.output()


def test_delete_then_recreate(gw):
    n = len(wait_rows(gw, 1))
    c = gw.connect()
    before = c.call("config.get")["appliedConfigHash"]
    os.unlink(gw.config_path)
    wait_log(gw, "was removed; keeping the running config")
    assert len(rows(gw)) == n
    assert c.call("health") is not None
    assert c.call("config.get")["appliedConfigHash"] == before
    write_config(gw, with_origins(base_config(), "http://back"))
    r = wait_rows(gw, n + 1)
    assert r[-1]["outcome"] == "applied"


def test_hot_change_keeps_connections(gw):
    n = len(wait_rows(gw, 1))
    c = gw.connect()
    cfg = with_origins(base_config(), "http://hot.example")
    cfg["gateway"]["auth"] = {"rateLimit": {"maxAttempts": 3}}
    write_config(gw, cfg)
    r = wait_rows(gw, n + 1)
    assert r[-1]["outcome"] == "applied"
    paths = json.loads(r[-1]["paths"])
    assert {p["action"] for p in paths} == {"hot"}
    wait_log(gw, "config hot reload applied (gateway.auth.rateLimit."
                 "maxAttempts, gateway.controlUi.allowedOrigins)")
    # the same connection still works, the new origin is allowed now
    assert c.call("health") is not None
    b = gw.ws(headers={"Origin": "http://hot.example"})
    res = gw.handshake(b, client_id="openclaw-control-ui", mode="webchat")
    err = res.get("error") or {}
    assert "origin not allowed" not in err.get("message", ""), res


def test_invalid_edit_keeps_snapshot(gw):
    n = len(wait_rows(gw, 1))
    c = gw.connect()
    before = c.call("config.get")["appliedConfigHash"]
    with open(gw.config_path, "w") as f:
        f.write('{ gateway: { mode: "local", port: "nope", '
                'reload: { debounceMs: %d } } }' % DEBOUNCE_MS)
    r = wait_rows(gw, n + 1)
    assert r[-1]["outcome"] == "rejected"
    assert "gateway.port" in r[-1]["reason"]
    wait_log(gw, "config reload skipped (invalid config): gateway.port:")
    got = c.call("config.get")
    assert got["appliedConfigHash"] == before
    assert got["valid"] is False
    assert any(i["path"] == "gateway.port" for i in got["issues"])


def test_sighup_reloads(gw):
    n = len(wait_rows(gw, 1))
    # SIGHUP with nothing changed: no row
    gw.proc.send_signal(signal.SIGHUP)
    wait_log(gw, "SIGHUP: reloading")
    wait_log(gw, "config unchanged")
    assert len(rows(gw)) == n


# ---- restart ----------------------------------------------------------------

def test_restart_class_change_restarts_once_same_pid(gw):
    n = len(wait_rows(gw, 1))
    c = gw.connect()
    pid = gw.proc.pid
    cfg = base_config(tls={"autoGenerate": True})
    write_config(gw, cfg)
    ev = c.wait_event("shutdown", timeout=10)
    assert ev["payload"]["reason"].startswith("config change")
    assert ev["payload"]["restartExpectedMs"] > 0
    code, reason = c.expect_close(timeout=10)
    assert (code, reason) == (1012, "service restart")
    r = wait_rows(gw, n + 2)
    assert r[n]["outcome"] == "restart"
    assert r[n + 1]["source"] == "restart"
    assert r[n + 1]["outcome"] == "started"
    wait_ready_again(gw)
    assert gw.proc.poll() is None and gw.proc.pid == pid
    with open(os.path.join(gw.state_dir, "gateway.lock")) as f:
        assert json.load(f)["pid"] == pid
    c2 = gw.connect()
    assert c2.call("health") is not None
    time.sleep(QUIET_S)
    assert len(rows(gw)) == n + 2      # restarted once
    assert gw.output().count("restart mode: full process restart") == 1


def test_sigusr1_restart_inherits_socket(gw):
    pid = gw.proc.pid
    n = len(wait_rows(gw, 1))
    gw.proc.send_signal(signal.SIGUSR1)
    r = wait_rows(gw, n + 1)
    assert r[-1]["source"] == "restart"
    wait_ready_again(gw)
    assert gw.proc.pid == pid
    wait_log(gw, "listening sockets inherited across restart")


def test_restart_storm_guard(launcher):
    gw = launcher.start(config=base_config(),
                        env={"CLAWGATE_RESTART_COOLDOWN_MS": "3000"})
    n = len(wait_rows(gw, 1))
    gw.proc.send_signal(signal.SIGUSR1)
    wait_rows(gw, n + 1)
    wait_ready_again(gw)
    t0 = time.monotonic()
    gw.proc.send_signal(signal.SIGUSR1)
    wait_log(gw, "restart deferred")
    r = wait_rows(gw, n + 2, timeout=15)
    assert time.monotonic() - t0 > 1.5
    assert r[-1]["source"] == "restart"


def test_no_respawn_in_process_restart(launcher):
    gw = launcher.start(config=base_config(),
                        env={"OPENCLAW_NO_RESPAWN": "1",
                             "CLAWGATE_RESTART_COOLDOWN_MS": "0"})
    n = len(wait_rows(gw, 1))
    gw.proc.send_signal(signal.SIGUSR1)
    r = wait_rows(gw, n + 1)
    assert r[-1]["source"] == "restart"
    wait_log(gw, "restart mode: in-process restart")
    wait_ready_again(gw)
    assert gw.connect().call("health") is not None


def test_restart_failure_rolls_back(gw):
    n = len(wait_rows(gw, 1))
    good = open(gw.config_path).read()
    # 192.0.2.1 (TEST-NET-1) is not a local address: bind fails
    write_config(gw, base_config(bind="custom",
                                 customBindHost="192.0.2.1"))
    r = wait_rows(gw, n + 2, timeout=15)
    assert r[n]["outcome"] == "restart"
    assert r[n + 1]["source"] == "rollback"
    assert "config restart failed" in r[n + 1]["reason"]
    wait_ready_again(gw)
    assert open(gw.config_path).read() == good
    assert any(f.startswith("openclaw.json.rejected.")
               for f in os.listdir(gw.state_dir))
    assert gw.connect().call("health") is not None


# ---- modes ------------------------------------------------------------------

def test_mode_off_logs_only(launcher):
    cfg = base_config()
    cfg["gateway"]["reload"]["mode"] = "off"
    gw = launcher.start(config=cfg)
    n = len(wait_rows(gw, 1))
    c = gw.connect()
    before = c.call("config.get")["appliedConfigHash"]
    write_config(gw, with_origins(cfg, "http://x"))
    r = wait_rows(gw, n + 1)
    assert r[-1]["outcome"] == "skipped"
    wait_log(gw, "config reload disabled (gateway.reload.mode=off)")
    assert c.call("config.get")["appliedConfigHash"] == before


def test_mode_hot_never_restarts(launcher):
    cfg = base_config()
    cfg["gateway"]["reload"]["mode"] = "hot"
    gw = launcher.start(config=cfg, env={"CLAWGATE_RESTART_COOLDOWN_MS": "0"})
    n = len(wait_rows(gw, 1))
    c = gw.connect()
    cfg2 = with_origins(cfg, "http://x")
    cfg2["gateway"]["tls"] = {"autoGenerate": True}
    write_config(gw, cfg2)
    r = wait_rows(gw, n + 1)
    assert r[-1]["outcome"] == "pending"
    wait_log(gw, "hot mode ignoring (gateway.tls.autoGenerate)")
    time.sleep(QUIET_S)
    assert len(rows(gw)) == n + 1
    assert c.call("health") is not None     # not disconnected


def test_mode_restart_restarts_on_hot_change(launcher):
    cfg = base_config()
    cfg["gateway"]["reload"]["mode"] = "restart"
    gw = launcher.start(config=cfg, env={"CLAWGATE_RESTART_COOLDOWN_MS": "0"})
    n = len(wait_rows(gw, 1))
    write_config(gw, with_origins(cfg, "http://x"))
    r = wait_rows(gw, n + 2)
    assert r[n]["outcome"] == "restart"
    assert r[n + 1]["source"] == "restart"
    wait_ready_again(gw)


# ---- secret rotation -----------------------------------------------------------

def test_rotation_closes_old_secret_sockets(launcher):
    cfg = base_config(auth={"mode": "token", "token": "old-secret"})
    gw = launcher.start(config=cfg, token=None, auth=None)
    n = len(wait_rows(gw, 1))
    old = gw.connect(token="old-secret")
    cfg["gateway"]["auth"]["token"] = "new-secret"
    write_config(gw, cfg)
    code, reason = old.expect_close(timeout=10)
    assert (code, reason) == (4001, "gateway auth changed")
    r = wait_rows(gw, n + 1)
    assert r[-1]["outcome"] == "applied"        # hot, no restart
    assert "new-secret" not in json.dumps(r) and \
        "old-secret" not in json.dumps(r)
    new = gw.connect(token="new-secret")
    assert new.call("health") is not None
    bad = gw.ws()
    res = gw.handshake(bad, token="old-secret")
    assert res["ok"] is False


def test_snapshots_readable_with_sqlite3_cli(gw):
    wait_rows(gw, 1)
    exe = shutil.which("sqlite3")
    if not exe:
        pytest.skip("sqlite3 CLI not installed")
    out = subprocess.run([exe, "-readonly", "-json", db_path(gw),
                          "select * from config_history"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    hist = json.loads(out.stdout)
    assert hist[0]["source"] == "startup"
