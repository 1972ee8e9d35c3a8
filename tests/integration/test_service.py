"""The gateway as a service (issue 9): unit writers, install/uninstall/
start/stop/restart against a recording `systemctl` stand-in first on PATH
(systemd cannot run here), every generated unit through
`systemd-analyze verify`, the token kept in the state dir, the dashboard
URL and the CLI that finds the local token and never locks itself out.
"""

import json
import os
import shutil
import stat
import subprocess

import pytest

from harness import EXT_URL, PEER, bin_missing

pytestmark = [
    pytest.mark.skipif(bool(EXT_URL) and bin_missing(),
                       reason="needs the clawgate binary"),
    pytest.mark.skipif(PEER, reason="clawgate's own CLI and service files"),
]

STANDIN = r"""#!/bin/sh
# Stand-in for the OS tool systemctl: records its arguments, answers
# show-environment, fails when SYSTEMCTL_FAIL matches the verb.
printf '%s\n' "$*" >> "$SYSTEMCTL_LOG"
for a in "$@"; do
    case "$a" in --*) ;; *) verb=$a; break ;; esac
done
if [ -n "$SYSTEMCTL_FAIL" ] && [ "$verb" = "$SYSTEMCTL_FAIL" ]; then
    echo "Failed to $verb: stand-in failure" >&2
    exit 1
fi
exit 0
"""


@pytest.fixture
def svc(launcher, tmp_path):
    """A fixture world: HOME, XDG_* and a system unit dir under tmp_path,
    the recording systemctl first on PATH."""
    state = launcher.prepare()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ctl = bindir / "systemctl"
    ctl.write_text(STANDIN)
    ctl.chmod(0o755)
    rt = tmp_path / "run"
    rt.mkdir()
    env = {
        "PATH": "%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin:/bin")),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "XDG_RUNTIME_DIR": str(rt),
        "CLAWGATE_SYSTEM_UNIT_DIR": str(tmp_path / "system"),
        "CLAWGATE_LINGER_DIR": str(tmp_path / "linger"),
        "SYSTEMCTL_LOG": str(tmp_path / "systemctl.log"),
    }

    class S:
        pass
    s = S()
    s.state = state
    s.env = env
    s.tmp = tmp_path
    s.unit_dir = tmp_path / "xdg" / "systemd" / "user"
    s.unit = s.unit_dir / "openclaw-gateway.service"
    s.log = tmp_path / "systemctl.log"

    def run(*args, env=None, **kw):
        e = dict(s.env)
        e.update(env or {})
        return launcher.run(list(args), env=e, state_dir=state, **kw)

    def calls():
        if not s.log.exists():
            return []
        return s.log.read_text().splitlines()
    s.run = run
    s.calls = calls
    return s


def verify(tmp_path, text, user=True):
    """systemd-analyze verify, strict: rc 0 and nothing on stderr."""
    exe = shutil.which("systemd-analyze")
    if not exe:
        pytest.skip("systemd-analyze not installed (contrib/deps.sh)")
    d = tmp_path / ("verify-user" if user else "verify-system")
    d.mkdir(exist_ok=True)
    f = d / "openclaw-gateway.service"
    f.write_text(text)
    rt = tmp_path / "verify-rt"
    rt.mkdir(exist_ok=True)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(rt))
    argv = [exe, "verify"] + (["--user"] if user else []) + [str(f)]
    p = subprocess.run(argv, capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip() == "", p.stderr


def unit_lines(text):
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def test_print_user_unit_is_openclaw_compatible_and_verifies(svc, tmp_path):
    with open(os.path.join(svc.state, "openclaw.json"), "w") as f:
        json.dump({"gateway": {"mode": "local",
                               "auth": {"token": "s3cret-token-xyz"}}}, f)
    rc, out, err = svc.run("gateway", "install", "--print", "--port", "18123")
    assert rc == 0, err
    lines = unit_lines(out)
    assert "Type=notify" in lines
    assert "NotifyAccess=main" in lines
    assert "Restart=always" in lines
    assert "RestartPreventExitStatus=78" in lines
    assert "WantedBy=default.target" in lines
    exec_start = [ln for ln in lines if ln.startswith("ExecStart=")]
    assert len(exec_start) == 1
    argv = exec_start[0][len("ExecStart="):].split()
    assert os.path.isabs(argv[0]) and os.access(argv[0], os.X_OK)
    assert argv[1:] == ["gateway", "run", "--port", "18123"]
    assert "Environment=OPENCLAW_SERVICE_MARKER=openclaw" in lines
    assert "Environment=OPENCLAW_SERVICE_KIND=gateway" in lines
    assert "Environment=OPENCLAW_GATEWAY_PORT=18123" in lines
    assert ("Environment=OPENCLAW_SYSTEMD_UNIT=openclaw-gateway.service"
            in lines)
    assert "Environment=OPENCLAW_STATE_DIR=%s" % svc.state in lines
    assert any(ln.startswith('Environment="CLAWGATE_SERVICE=clawgate ')
               for ln in lines)
    assert "s3cret-token-xyz" not in out
    assert "TOKEN" not in out.upper().replace("OPENCLAW", "")
    # --print touches nothing
    assert not svc.unit.exists()
    assert svc.calls() == []
    verify(tmp_path, out)


def test_print_profile_and_system_units_verify(svc, tmp_path):
    rc, out, err = svc.run("--profile", "work", "gateway", "install",
                           "--print")
    assert rc == 0, err
    assert ("Environment=OPENCLAW_SYSTEMD_UNIT="
            "openclaw-gateway-work.service") in out
    assert "Environment=OPENCLAW_PROFILE=work" in out
    assert "Description=OpenClaw Gateway (profile: work, clawgate)" in out
    verify(tmp_path, out)
    rc, out, err = svc.run("gateway", "install", "--print", "--system",
                           "--user", "daemon")
    assert rc == 0, err
    assert "WantedBy=multi-user.target" in out
    assert "User=daemon" in out
    verify(tmp_path, out, user=False)


def test_print_launchd_and_schtasks(svc):
    rc, out, err = svc.run("gateway", "install", "--print", "--target",
                           "launchd", "--port", "18124")
    assert rc == 0, err
    assert "<string>ai.openclaw.gateway</string>" in out
    assert "<key>OPENCLAW_SERVICE_MARKER</key>" in out
    assert "<string>--port</string>\n    <string>18124</string>" in out
    assert "<key>RunAtLoad</key>" in out
    rc, out, err = svc.run("gateway", "install", "--print", "--target",
                           "schtasks", "--port", "18125")
    assert rc == 0, err
    assert "<URI>\\OpenClaw Gateway</URI>" in out
    assert "<Arguments>gateway run --port 18125</Arguments>" in out
    assert "<LogonTrigger>" in out
    rc, out, err = svc.run("gateway", "install", "--target", "launchd")
    assert rc == 1
    assert "--print" in err
    rc, out, err = svc.run("gateway", "install", "--print", "--target", "x")
    assert rc == 2


def test_install_start_stop_uninstall_through_systemctl(svc, tmp_path):
    rc, out, err = svc.run("gateway", "install", "--port", "18126")
    assert rc == 0, err
    assert svc.unit.exists()
    text = svc.unit.read_text()
    assert "ExecStart=" in text and "--port 18126" in text
    verify(tmp_path, text)
    assert svc.calls() == [
        "--user show-environment",
        "--user daemon-reload",
        "--user enable openclaw-gateway.service",
        "--user restart openclaw-gateway.service",
    ]
    assert "loginctl enable-linger" in out  # no linger file in the fixture
    # same setup again: no change, accepted
    rc, out, err = svc.run("gateway", "install", "--port", "18126")
    assert rc == 0, err
    # a different port is drift: refused without --force
    rc, out, err = svc.run("gateway", "install", "--port", "18127",
                           "--json")
    assert rc == 1
    res = json.loads(out)
    assert res["ok"] is False and res["result"] == "exists"
    assert "ExecStart" in res["message"]
    assert "--port 18126" in svc.unit.read_text()
    rc, out, err = svc.run("gateway", "install", "--port", "18127",
                           "--force")
    assert rc == 0, err
    assert "--port 18127" in svc.unit.read_text()

    svc.log.unlink()
    rc, out, err = svc.run("gateway", "stop", "--disable", "--json")
    assert rc == 0, err
    assert json.loads(out)["result"] == "stopped"
    rc, out, err = svc.run("gateway", "start")
    assert rc == 0, err
    assert svc.calls() == [
        "--user show-environment",
        "--user stop openclaw-gateway.service",
        "--user disable openclaw-gateway.service",
        "--user show-environment",
        "--user start openclaw-gateway.service",
    ]
    svc.log.unlink()
    rc, out, err = svc.run("gateway", "uninstall")
    assert rc == 0, err
    assert not svc.unit.exists()
    assert "--user disable openclaw-gateway.service" in svc.calls()
    assert svc.calls()[-1] == "--user daemon-reload"
    rc, out, err = svc.run("gateway", "start")
    assert rc == 1
    assert "not installed" in err and "clawgate gateway install" in err


def test_systemctl_failure_is_reported(svc):
    rc, out, err = svc.run("gateway", "install",
                           env={"SYSTEMCTL_FAIL": "restart"})
    assert rc == 1
    assert "systemctl failed" in err and "stand-in failure" in err


def test_no_user_manager_explains_the_fix(svc, tmp_path):
    rc, out, err = svc.run("gateway", "install",
                           env={"XDG_RUNTIME_DIR": None})
    assert rc == 1
    assert "XDG_RUNTIME_DIR" in err and "loginctl enable-linger" in err
    assert not svc.unit.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = svc.run("gateway", "install",
                           env={"PATH": str(empty)})
    assert rc == 1
    assert "systemd is not available" in err
    assert "--print" in err
    assert not svc.unit.exists()
    rc, out, err = svc.run("gateway", "install", "--json",
                           env={"SYSTEMCTL_FAIL": "show-environment"})
    assert rc == 1
    res = json.loads(out)
    assert res["result"] == "unavailable"
    assert "enable-linger" in res["message"]


# ---- the token kept in the state dir, the banner, dashboard, auth-token ---

def banner_dashboard(gw):
    lines = [ln for ln in gw.stdout().splitlines() if ln.strip()]
    assert lines, gw.output()
    assert lines[-1].startswith("Dashboard: http://127.0.0.1:%d/#token="
                                % gw.port), lines
    return lines[-1].split("#token=", 1)[1]


def test_generated_token_is_kept_and_reused(launcher):
    gw = launcher.start(token=None)
    path = os.path.join(gw.state_dir, "gateway.token")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    tok = open(path).read().strip()
    assert len(tok) >= 32
    assert banner_dashboard(gw) == tok
    assert tok not in gw.stderr()  # never in the log
    # the CLI on the same host finds it: no --token needed
    rc, out, err = launcher.run(["gateway", "auth-token"],
                                state_dir=gw.state_dir)
    assert rc == 0, err
    assert out.strip() == tok
    rc, out, err = launcher.run(["gateway", "call", "health", "--json"],
                                env={"OPENCLAW_GATEWAY_PORT": gw.port},
                                state_dir=gw.state_dir)
    assert rc == 0, err
    rc, out, err = launcher.run(["dashboard", "--json"],
                                state_dir=gw.state_dir)
    assert rc == 0, err
    d = json.loads(out)
    assert d["url"] == "http://127.0.0.1:%d/#token=%s" % (gw.port, tok)
    assert d["httpUrl"] == "http://127.0.0.1:%d/" % gw.port
    assert d["tokenIncluded"] is True and d["running"] is True
    rc, out, err = launcher.run(["dashboard", "--no-open"],
                                state_dir=gw.state_dir)
    assert rc == 0 and "#token=%s" % tok in out
    gw.stop()
    gw2 = launcher.start(token=None, state_dir=gw.state_dir, port=gw.port)
    assert banner_dashboard(gw2) == tok
    assert open(path).read().strip() == tok


def test_rotate_restarts_with_the_new_token(launcher):
    gw = launcher.start(token=None)
    old = banner_dashboard(gw)
    rc, out, err = launcher.run(["gateway", "auth-token", "--rotate"],
                                state_dir=gw.state_dir, timeout=120)
    assert rc == 0, out + err
    new = out.strip().splitlines()[-1]
    assert new != old and len(new) >= 32
    assert "Gateway restarted" in out
    rc, out, err = launcher.run(["gateway", "call", "health", "--json",
                                 "--token", new, "--url", gw.url],
                                state_dir=gw.state_dir)
    assert rc == 0, err
    rc, out, err = launcher.run(["gateway", "call", "health", "--json",
                                 "--token", old, "--url", gw.url],
                                state_dir=gw.state_dir)
    assert rc != 0


def test_missing_token_says_so(gateway, launcher):
    rc, out, err = launcher.run(["gateway", "call", "health", "--url",
                                 gateway.url])
    assert rc != 0
    rc, out, err = launcher.run(["gateway", "status", "--url",
                                 gateway.url])
    assert "gateway token required" in out + err
    assert "device identity required" not in out + err


def test_shared_token_does_not_lock_the_cli_out(launcher):
    cfg = {"gateway": {"mode": "local",
                       "nodes": {"pairing": {"autoApproveLocal": False}}}}
    gw = launcher.start(config=cfg)
    client = launcher.prepare()  # a fresh CLI identity, never approved
    for args in (["devices", "list", "--json"],
                 ["gateway", "call", "health", "--json"]):
        rc, out, err = launcher.run(args + ["--url", gw.url, "--token",
                                            gw.token], state_dir=client)
        assert rc == 0, (args, out, err)
        assert "pairing required" not in out + err


def test_restart_without_systemd_uses_the_lock(svc, launcher):
    gw = launcher.start(state_dir=svc.state)
    rc, out, err = svc.run("gateway", "restart", "--json", timeout=120)
    assert rc == 0, out + err
    res = json.loads(out)
    assert res["ok"] is True and res["result"] == "restarted"
    # no unit installed: systemctl is not asked to restart anything
    assert not any("restart" in c for c in svc.calls())
    assert gw.alive()


# ---- gateway status / status / health ----------------------------------

OPENCLAW_STATUS_KEYS = {"cli", "logFile", "service", "config", "gateway",
                        "hostDesktop", "port", "rpc", "extraServices"}


def status_json(svc, gw, *extra, env=None):
    e = {"OPENCLAW_GATEWAY_PORT": gw.port}
    e.update(env or {})
    rc, out, err = svc.run("gateway", "status", "--json", "--token",
                           gw.token, *extra, env=e)
    return rc, json.loads(out), err


def test_gateway_status_json_has_openclaws_keys(svc, launcher):
    gw = launcher.start(state_dir=svc.state)
    rc, st, err = status_json(svc, gw, "--require-rpc")
    assert rc == 0, err
    assert OPENCLAW_STATUS_KEYS <= set(st), sorted(st)
    assert st["rpc"]["ok"] is True and st["rpc"]["kind"] == "read"
    assert st["rpc"]["url"] == "ws://127.0.0.1:%d" % gw.port
    assert st["rpc"]["capability"] == "read_only"
    assert st["rpc"]["auth"]["scopes"] == ["operator.read"]
    assert st["gateway"]["port"] == gw.port
    assert st["gateway"]["probeUrl"] == "ws://127.0.0.1:%d" % gw.port
    assert st["gateway"]["controlUiLinks"]["httpUrl"] == \
        "http://127.0.0.1:%d/" % gw.port
    assert st["service"]["runtime"] == {"status": "running",
                                        "pid": gw.proc.pid}
    assert st["service"]["loaded"] is False
    assert st["port"]["status"] == "busy"
    assert {li.get("pid") for li in st["port"]["listeners"]} == \
        {gw.proc.pid}
    assert st["config"]["cli"]["path"] == os.path.join(svc.state,
                                                       "openclaw.json")
    assert st["config"]["mismatch"] is False
    assert st["logFile"].startswith(os.path.join(svc.state, "logs"))
    assert st["extraServices"] == []
    # text: openclaw's lines
    rc, out, err = svc.run("gateway", "status", "--token", gw.token,
                           env={"OPENCLAW_GATEWAY_PORT": gw.port})
    assert rc == 0, err
    for line in ("Service: systemd (disabled)",
                 "File logs: ", "Config (cli): ", "Config (service): ",
                 "Gateway: bind=loopback (127.0.0.1), port=%d" % gw.port,
                 "Probe target: ws://127.0.0.1:%d" % gw.port,
                 "Dashboard: http://127.0.0.1:%d/" % gw.port,
                 "Runtime: running (pid %d)" % gw.proc.pid,
                 "Connectivity probe: ok",
                 "Capability: connected-no-operator-scope",
                 "Troubleshooting: https://docs.openclaw.ai/"):
        assert line in out, (line, out)
    # --no-probe: no rpc block
    rc, st, err = status_json(svc, gw, "--no-probe")
    assert rc == 0 and "rpc" not in st


def test_gateway_status_require_rpc_fails_when_down(svc, launcher):
    port = 1  # nothing listens on port 1 of loopback
    rc, out, err = svc.run("gateway", "status", "--json", "--require-rpc",
                           "--url", "ws://127.0.0.1:%d" % port, "--token",
                           "T")
    assert rc == 1
    st = json.loads(out)
    assert st["rpc"]["ok"] is False and "error" in st["rpc"]
    assert st["service"]["runtime"]["status"] == "stopped"


def test_gateway_status_sees_the_installed_unit_and_its_drift(svc):
    rc, out, err = svc.run("gateway", "install", "--port", "18131")
    assert rc == 0, err
    rc, out, err = svc.run("gateway", "status", "--json", "--no-probe",
                           env={"OPENCLAW_GATEWAY_PORT": 18131})
    assert rc == 0, err
    s = json.loads(out)["service"]
    assert s["label"] == "systemd" and s["loaded"] is True
    assert s["command"]["sourcePath"] == str(svc.unit)
    assert s["command"]["programArguments"][1:] == [
        "gateway", "run", "--port", "18131"]
    assert s["command"]["environment"]["OPENCLAW_SERVICE_MARKER"] == \
        "openclaw"
    assert s["configAudit"] == {"ok": True, "issues": []}
    # the unit now runs another binary: drift
    text = svc.unit.read_text().replace("ExecStart=/", "ExecStart=/old/")
    svc.unit.write_text(text)
    env = {"OPENCLAW_GATEWAY_PORT": 18131}
    rc, out, err = svc.run("gateway", "status", "--json", "--no-probe",
                           env=env)
    s = json.loads(out)["service"]
    assert s["configAudit"]["ok"] is False
    assert [i["message"] for i in s["configAudit"]["issues"]] == \
        ["ExecStart"]
    rc, out, err = svc.run("gateway", "status", "--no-probe", env=env)
    assert "Service config issue: ExecStart differs" in err
    assert "clawgate gateway install --force" in err


STALE_UNIT = """[Unit]
Description=Clawdbot Gateway
[Service]
ExecStart=/usr/bin/node /opt/clawdbot/dist/index.js gateway --port 18789
[Install]
WantedBy=default.target
"""

OTHER_UNIT = """[Unit]
Description=another gateway
[Service]
ExecStart=/usr/bin/openclaw gateway --port 19001
Environment=OPENCLAW_SERVICE_MARKER=openclaw
Environment=OPENCLAW_SERVICE_KIND=gateway
[Install]
WantedBy=default.target
"""


def test_status_deep_finds_gateway_like_services(svc):
    sysdir = svc.tmp / "system"
    sysdir.mkdir()
    (sysdir / "clawdbot-gateway.service").write_text(STALE_UNIT)
    (sysdir / "nginx.service").write_text(
        "[Service]\nExecStart=/usr/sbin/nginx\n")
    svc.unit_dir.mkdir(parents=True)
    (svc.unit_dir / "openclaw-gateway-rescue.service").write_text(
        OTHER_UNIT)
    rc, out, err = svc.run("gateway", "status", "--deep", "--json",
                           "--no-probe")
    assert rc == 0, err
    extra = {e["label"]: e for e in json.loads(out)["extraServices"]}
    assert set(extra) == {"clawdbot-gateway.service",
                          "openclaw-gateway-rescue.service"}
    stale = extra["clawdbot-gateway.service"]
    assert stale["marker"] == "clawdbot" and stale["legacy"] is True
    assert stale["scope"] == "system"
    assert stale["detail"] == "unit: %s" % (sysdir /
                                             "clawdbot-gateway.service")
    assert extra["openclaw-gateway-rescue.service"]["legacy"] is False
    rc, out, err = svc.run("gateway", "status", "--deep", "--no-probe")
    assert "Other gateway-like services detected (best effort):" in out
    assert ("Inspection hint: systemctl --system status -- "
            "clawdbot-gateway.service") in out
    # without --deep nothing is scanned
    rc, out, err = svc.run("gateway", "status", "--json", "--no-probe")
    assert json.loads(out)["extraServices"] == []


def test_top_level_status_and_health(svc, launcher):
    gw = launcher.start(state_dir=svc.state)
    env = {"OPENCLAW_GATEWAY_PORT": gw.port}
    rc, out, err = svc.run("status", "--json", "--all", "--token", gw.token,
                           env=env)
    assert rc == 0, err
    st = json.loads(out)
    assert st["gateway"]["reachable"] is True
    assert st["dashboard"] == "http://127.0.0.1:%d/" % gw.port
    assert st["runtime"]["running"] is True
    assert st["service"]["installed"] is False
    assert [a["id"] for a in st["agents"]] == ["main"]
    assert st["sessions"]["count"] == 0
    assert st["health"]["ok"] is True
    rc, out, err = svc.run("status", "--token", gw.token, env=env)
    assert rc == 0, err
    assert "reachable" in out and "Agents: 1" in out
    rc, out, err = svc.run("status", "--json", "--token", "wrong", env=env)
    st = json.loads(out)
    assert st["gateway"]["reachable"] is False
    assert "token mismatch" in st["gateway"]["error"]
    rc, out, err = svc.run("health", "--token", gw.token, env=env)
    assert rc == 0, err
    assert "Gateway Health" in out and "OK" in out


# ---- doctor --------------------------------------------------------------

def doctor(svc, *args, env=None):
    e = {"OPENCLAW_GATEWAY_PORT": svc.port}
    e.update(env or {})
    rc, out, err = svc.run("doctor", "--json", *args, env=e)
    assert rc in (0, 1), (rc, out, err)
    res = json.loads(out)
    return rc, res, {f["id"]: f for f in res["findings"]}


@pytest.fixture
def dsvc(svc):
    from harness import free_port
    svc.port = free_port()
    return svc


def test_doctor_clean_state_exits_0(dsvc):
    rc, res, ids = doctor(dsvc)
    assert rc == 0, res
    assert res["ok"] is True
    assert [f for f in res["findings"] if f["severity"] != "info"] == []


def test_doctor_config_findings_and_lint(dsvc):
    cfg = os.path.join(dsvc.state, "openclaw.json")
    with open(cfg, "w") as f:
        f.write('{gateway: {mode: "local", auth: {token: "abc"}},'
                ' hooks: {token: "abc"},'
                ' models: {providers: {x: {apiKey: "${X_KEY}"}}}}')
    os.chmod(cfg, 0o600)
    rc, res, ids = doctor(dsvc)
    assert rc == 1
    assert ids["hooks.token-reuse"]["severity"] == "error"
    assert ids["auth.weak-token"]["severity"] == "warn"
    assert ids["secrets.plaintext"]["message"].endswith(
        "gateway.auth.token, hooks.token")  # ${X_KEY} is not plaintext
    assert "config.mode" not in ids
    assert res["summary"]["errors"] == 1
    rc, out, err = dsvc.run("doctor", "--lint",
                            env={"OPENCLAW_GATEWAY_PORT": dsvc.port})
    assert rc == 1
    lint = {f["id"] for f in json.loads(out)["findings"]}
    assert lint == {"hooks.token-reuse", "auth.weak-token",
                    "secrets.plaintext"}
    with open(cfg, "w") as f:
        f.write("{gateway: {port: 'x'}}")
    rc, res, ids = doctor(dsvc)
    assert rc == 1 and ids["config.valid"]["severity"] == "error"
    rc, out, err = dsvc.run("--profile", "../bad", "doctor")
    assert rc == 2


def test_doctor_fix_repairs_modes(dsvc):
    os.chmod(dsvc.state, 0o755)
    tok = os.path.join(dsvc.state, "gateway.token")
    with open(tok, "w") as f:
        f.write("x" * 43 + "\n")
    os.chmod(tok, 0o644)
    rc, res, ids = doctor(dsvc)
    assert rc == 1
    assert ids["state.dir-mode"]["fixable"] is True
    assert ids["state.file-mode"]["message"].startswith(tok)
    rc, res, ids = doctor(dsvc, "--fix")
    assert rc == 0, res
    assert ids["state.dir-mode"]["fixed"] is True
    assert stat.S_IMODE(os.stat(dsvc.state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tok).st_mode) == 0o600
    rc, res, ids = doctor(dsvc)
    assert rc == 0 and ids == {}


def lock_started(state_dir):
    try:
        with open(os.path.join(state_dir, "gateway.lock")) as f:
            return json.load(f).get("startedAtMs", 0)
    except (OSError, ValueError):
        return 0


def wait_restarted(gw, before, timeout=60):
    """gateway.mode is a restart-class key: wait for the new process
    (a newer startedAtMs in the lock) to answer /readyz."""
    import time
    import requests
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock_started(gw.state_dir) > before:
            try:
                if gw.http("GET", "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
        time.sleep(0.02)
    raise AssertionError("no restart; stderr:\n" + gw.stderr()[-3000:])


def test_doctor_fix_sets_mode_through_a_config_snapshot(dsvc, launcher):
    cfg = os.path.join(dsvc.state, "openclaw.json")
    with open(cfg, "w") as f:
        f.write('{"gateway": {"bind": "loopback"}}')
    os.chmod(cfg, 0o600)
    gw = launcher.start(state_dir=dsvc.state, port=dsvc.port,
                        token="Strong-token-0123456789-abcdefgh",
                        env={"CLAWGATE_RESTART_COOLDOWN_MS": "200"})
    env = {"OPENCLAW_GATEWAY_TOKEN": gw.token}
    rc, res, ids = doctor(dsvc, env=env)
    assert rc == 1 and "config.mode" in ids
    before = lock_started(gw.state_dir)
    rc, res, ids = doctor(dsvc, "--fix", env=env)
    assert rc == 0, res
    assert ids["config.mode"]["fixed"] is True
    assert "config rollback" in ids["config.mode"]["fix"]
    wait_restarted(gw, before)
    rc, out, err = dsvc.run("config", "get", "gateway.mode", "--url",
                            gw.url, "--token", gw.token)
    assert rc == 0 and out.strip().strip('"') == "local", out + err
    before = lock_started(gw.state_dir)
    rc, out, err = dsvc.run("config", "rollback", "--url", gw.url,
                            "--token", gw.token)
    assert rc == 0, err
    wait_restarted(gw, before)
    rc, res, ids = doctor(dsvc, env=env)
    assert "config.mode" in ids


def test_doctor_port_collision_names_the_pid(dsvc):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", dsvc.port))
    s.listen(1)
    try:
        rc, res, ids = doctor(dsvc)
    finally:
        s.close()
    assert rc == 1
    f = ids["port.collision"]
    assert f["severity"] == "error"
    assert "pid %d" % os.getpid() in f["message"]


def test_doctor_service_drift_duplicates_linger(dsvc):
    import pwd
    rc, out, err = dsvc.run("gateway", "install",
                            env={"OPENCLAW_GATEWAY_PORT": dsvc.port})
    assert rc == 0, err
    sysdir = dsvc.tmp / "system"
    sysdir.mkdir()
    stale = sysdir / "clawdbot-gateway.service"
    stale.write_text(STALE_UNIT)
    other = dsvc.port + 1 if dsvc.port < 65535 else dsvc.port - 1
    rc, res, ids = doctor(dsvc, env={"OPENCLAW_GATEWAY_PORT": other})
    assert rc == 1
    assert "--port %d" % dsvc.port in ids["service.drift"]["message"]
    assert ids["service.duplicates"]["fixable"] is True
    assert "legacy" in ids["service.duplicates"]["message"]
    assert ids["service.linger"]["severity"] == "warn"
    dsvc.log.unlink()
    # --fix re-installs the unit; the stale one needs --yes
    rc, res, ids = doctor(dsvc, "--fix", env={"OPENCLAW_GATEWAY_PORT": other})
    assert ids["service.drift"]["fixed"] is True
    assert "--port %d" % other in dsvc.unit.read_text()
    assert "--user daemon-reload" in dsvc.calls()
    assert ids["service.duplicates"]["fixed"] is False
    assert stale.exists()
    rc, res, ids = doctor(dsvc, "--fix", "--yes",
                          env={"OPENCLAW_GATEWAY_PORT": other})
    assert ids["service.duplicates"]["fixed"] is True
    assert not stale.exists()
    assert "disable --now clawdbot-gateway.service" in dsvc.calls()
    linger = dsvc.tmp / "linger"
    linger.mkdir()
    (linger / pwd.getpwuid(os.getuid()).pw_name).write_text("")
    rc, res, ids = doctor(dsvc, env={"OPENCLAW_GATEWAY_PORT": other})
    assert rc == 0, res
    assert ids == {}


def test_doctor_store_checks(dsvc):
    import sqlite3
    d = os.path.join(dsvc.state, "state")
    os.makedirs(d, mode=0o700)
    db = os.path.join(d, "clawgate.sqlite")
    c = sqlite3.connect(db)
    c.execute("create table t(x)")
    c.execute("pragma user_version=1")
    c.commit()
    c.close()
    os.chmod(db, 0o600)
    rc, res, ids = doctor(dsvc)
    assert rc == 0, res
    assert ids["store.migrations"]["severity"] == "info"
    assert "pending migration" in ids["store.migrations"]["message"]
    with open(db, "r+b") as f:
        f.write(b"this is not an SQLite database at all")
    rc, res, ids = doctor(dsvc)
    assert rc == 1
    assert ids["store.integrity"]["severity"] == "error"


# ---- logs ----------------------------------------------------------------

def test_logs_over_rpc_then_from_the_file(svc, launcher):
    gw = launcher.start(state_dir=svc.state)
    env = {"OPENCLAW_GATEWAY_PORT": gw.port}
    rc, out, err = svc.run("logs", "--limit", "3", "--json", "--token",
                           gw.token, env=env)
    assert rc == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert 1 <= len(lines) <= 3
    assert {"time", "level", "subsystem", "message"} <= set(lines[0])
    rc, out, err = svc.run("logs", "--plain", "--token", gw.token, env=env)
    assert rc == 0, err
    assert "[gateway] ready" in out
    assert "\033[" not in out  # no colour off a terminal
    gw.stop()
    rc, out, err = svc.run("logs", "--plain", "--limit", "2", env=env)
    assert rc == 0, err
    assert "Gateway not reachable" in err and "reading" in err
    assert len(out.splitlines()) == 2
    assert "shutdown" in out or "stopping" in out or "[gateway]" in out
    rc, out, err = svc.run("logs", "--limit", "0", env=env)
    assert rc == 2


def test_logs_follow_prints_new_lines(svc, launcher):
    gw = launcher.start(state_dir=svc.state)
    env = launcher.env_for(svc.state, dict(svc.env,
                                           OPENCLAW_GATEWAY_PORT=gw.port))
    from harness import BIN_ARGV
    p = subprocess.Popen(list(BIN_ARGV) + ["logs", "--follow", "--json",
                                           "--limit", "1", "--token",
                                           gw.token],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=env)
    import select
    import time

    def readline(deadline):
        """One line, or None at the deadline (the CLI may have hung)."""
        buf = b""
        fd = p.stdout.fileno()
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [],
                                    max(0, deadline - time.monotonic()))
            if not r:
                break
            ch = os.read(fd, 1)
            if not ch:
                break
            if ch == b"\n":
                return buf.decode()
            buf += ch
        return None

    try:
        deadline = time.monotonic() + 60
        first = readline(deadline)
        assert first, "no first line"
        # something the gateway logs: a config change through the CLI
        rc, out, err = svc.run("config", "set", "logging.level", "info",
                               "--url", gw.url, "--token", gw.token)
        assert rc == 0, err
        seen = []
        while not any("logging.level" in m or "reload" in m for m in seen):
            line = readline(deadline)
            assert line is not None, seen
            seen.append(json.loads(line)["message"])
    finally:
        p.terminate()
        p.wait(timeout=30)


# ---- completion, group help, config file/schema ---------------------------

def test_completion_scripts_cover_the_command_table(svc, tmp_path):
    rc, out, err = svc.run("completion", "bash")
    assert rc == 0, err
    f = tmp_path / "c.bash"
    f.write_text(out)
    p = subprocess.run(["bash", "-c", "source %s && COMP_WORDS=(clawgate "
                        "gateway st); COMP_CWORD=2; _clawgate && echo "
                        "${COMPREPLY[*]}" % f], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["status", "start", "stop"]
    rc, out, err = svc.run("completion", "zsh")
    assert rc == 0 and out.startswith("#compdef clawgate")
    rc, out, err = svc.run("completion", "fish")
    assert rc == 0
    assert "complete -c clawgate -n __fish_use_subcommand -a doctor" in out
    assert "-l no-open" in out
    rc, out, err = svc.run("completion", "tcsh")
    assert rc == 2


def test_group_help(svc):
    rc, out, err = svc.run("devices")
    assert rc == 0, err
    assert "devices approve" in out and "devices list" in out
    rc, out, err = svc.run("help", "gateway")
    assert rc == 0
    for sub in ("install", "uninstall", "start", "stop", "restart",
                "status", "auth-token"):
        assert "gateway %s " % sub in out
    rc, out, err = svc.run("devices", "frob")
    assert rc == 2 and "unknown command: devices frob" in err
    assert "devices list" in err


def test_config_file_and_schema(svc):
    rc, out, err = svc.run("config", "file")
    assert rc == 0 and out.strip() == os.path.join(svc.state,
                                                   "openclaw.json")
    rc, out, err = svc.run("config", "file", "--json")
    assert json.loads(out) == {"path": os.path.join(svc.state,
                                                    "openclaw.json"),
                               "exists": False}
    rc, out, err = svc.run("config", "schema")
    assert rc == 0, err
    schema = json.loads(out)
    assert "gateway" in json.dumps(schema)


# ---- make install ----------------------------------------------------------

def test_make_install_destdir(tmp_path):
    from harness import BIN_ARGV
    build = os.path.dirname(os.path.abspath(BIN_ARGV[-1]))
    if not os.path.exists(os.path.join(build, "Makefile")):
        pytest.skip("CLAWGATE_BIN is not in a build tree")
    dest = tmp_path / "dest"
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.run(["make", "-s", "-C", build, "install",
                        "DESTDIR=%s" % dest, "prefix=/usr"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    files = sorted(str(f.relative_to(dest)) for f in dest.rglob("*")
                   if f.is_file())
    assert files == [
        "usr/bin/clawgate",
        "usr/share/bash-completion/completions/clawgate",
        "usr/share/clawgate/systemd/openclaw-gateway.service",
        "usr/share/fish/vendor_completions.d/clawgate.fish",
        "usr/share/man/man1/clawgate-config.1",
        "usr/share/man/man1/clawgate-devices.1",
        "usr/share/man/man1/clawgate-doctor.1",
        "usr/share/man/man1/clawgate-gateway.1",
        "usr/share/man/man1/clawgate.1",
        "usr/share/man/man5/clawgate.json.5",
        "usr/share/zsh/site-functions/_clawgate",
    ], files
    unit = (dest / "usr/share/clawgate/systemd/openclaw-gateway.service")
    text = unit.read_text()
    import re
    m = re.search(r"^ExecStart=(/\S*/bin/clawgate) gateway run --port 18789$",
                  text, re.M)
    assert m, text  # $(bindir) of the configure run
    assert "@" not in text
    verify(tmp_path, text.replace(m.group(1),
                                  str(dest / "usr/bin/clawgate")))
    comp = (dest / "usr/share/bash-completion/completions/clawgate")
    assert "complete -o default -F _clawgate clawgate" in comp.read_text()
    man = shutil.which("man")
    if man:
        for page in (dest / "usr/share/man").rglob("*.[15]"):
            r = subprocess.run([man, "--warnings", "-l", str(page)],
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, MANPAGER="cat",
                                        PAGER="cat"))
            assert r.returncode == 0 and r.stderr == "", (page, r.stderr)


# ---- config patch, devices clear ------------------------------------------

def test_config_patch_and_dry_run(svc, launcher, tmp_path):
    gw = launcher.start(state_dir=svc.state)
    patch = tmp_path / "p.json5"
    patch.write_text("{ logging: { level: 'debug' } }  // a comment\n")
    common = ["--url", gw.url, "--token", gw.token]
    rc, out, err = svc.run("config", "patch", "--file", str(patch),
                           "--dry-run", *common)
    assert rc == 0, err
    assert "Dry run (nothing written)" in out and "logging.level" in out
    rc, out, err = svc.run("config", "get", "logging.level", *common)
    assert out.strip().strip('"') != "debug"
    rc, out, err = svc.run("config", "patch", "--file", str(patch), "--json",
                           *common)
    assert rc == 0, err
    res = json.loads(out)
    assert res["snapshotId"] >= 1
    rc, out, err = svc.run("config", "get", "logging.level", *common)
    assert out.strip().strip('"') == "debug"
    rc, out, err = svc.run("config", "patch", "--stdin", *common,
                           input=b"[1, 2]")
    assert rc == 1 and "JSON5 object" in err
    rc, out, err = svc.run("config", "patch", *common)
    assert rc == 2


def test_devices_clear(svc, launcher):
    gw = launcher.start(state_dir=svc.state)
    common = ["--url", gw.url, "--token", gw.token]
    other = launcher.prepare()
    # a signed CLI connect pairs that CLI's identity (loopback auto-approve)
    rc, out, err = launcher.run(["devices", "list", "--json"] + common,
                                state_dir=other)
    assert rc == 0, err
    rc, out, err = svc.run("devices", "list", "--json", *common)
    paired = {d["deviceId"] for d in json.loads(out)["paired"]}
    assert len(paired) >= 1
    rc, out, err = svc.run("devices", "clear", *common)
    assert rc == 2 and "--yes" in err
    rc, out, err = svc.run("devices", "clear", "--yes", "--pending",
                           "--json", *common)
    assert rc == 0, err
    res = json.loads(out)
    assert set(res["removed"]) == paired and res["rejected"] == []


# ---- gateway probe -----------------------------------------------------------

PROBE_KEYS = {"ok", "degraded", "capability", "ts", "durationMs",
              "timeoutMs", "primaryTargetId", "warnings", "network",
              "discovery", "targets"}
TARGET_KEYS = {"id", "kind", "url", "active", "tunnel", "connect", "auth",
               "server", "self", "config", "health", "summary", "presence"}


def test_probe_json_has_openclaws_fields(svc, launcher):
    gw = launcher.start(state_dir=svc.state)
    rc, out, err = svc.run("gateway", "probe", "--json", "--url", gw.url,
                           "--token", gw.token,
                           env={"OPENCLAW_GATEWAY_PORT": gw.port})
    assert rc == 0, err
    p = json.loads(out)
    assert PROBE_KEYS <= set(p), sorted(p)
    assert p["ok"] is True and p["degraded"] is True
    assert p["capability"] == "connected_no_operator_scope"
    assert p["timeoutMs"] == 3000 and p["durationMs"] >= 0
    assert p["primaryTargetId"] == "explicit"
    assert [w["code"] for w in p["warnings"]] == ["probe_scope_limited"]
    assert p["network"]["localLoopbackUrl"] == gw.url
    assert len(p["targets"]) == 1
    t = p["targets"][0]
    assert TARGET_KEYS <= set(t)
    assert t["connect"]["ok"] is True and t["connect"]["scopeLimited"]
    assert t["connect"]["error"] == "missing scope: operator.read"
    assert t["auth"]["scopes"] == []
    rc, out, err = svc.run("gateway", "probe", "--url", gw.url, "--token",
                           gw.token, env={"OPENCLAW_GATEWAY_PORT": gw.port})
    assert rc == 0
    assert "Reachable: yes" in out and "Probe budget: 3000ms" in out
    assert "Discovery (this machine)" in out
    assert "multiple reachable gateway identities" not in out


def test_probe_warns_about_several_gateways(svc, launcher, tmp_path):
    a = launcher.start(state_dir=svc.state)
    home = tmp_path / "probehome"
    home.mkdir()
    other = home / ".openclaw-rescue"
    other.mkdir(mode=0o700)
    b = launcher.start(state_dir=str(other), token=None,
                       env={"HOME": str(home)})
    rc, out, err = svc.run("gateway", "probe", "--json", "--url", a.url,
                           "--token", a.token,
                           env={"HOME": str(home),
                                "OPENCLAW_GATEWAY_PORT": a.port})
    assert rc == 0, err
    p = json.loads(out)
    assert p["discovery"]["count"] == 1
    assert p["discovery"]["beacons"][0]["port"] == b.port
    ids = [t["id"] for t in p["targets"]]
    assert ids == ["explicit", "localState:.openclaw-rescue"], ids
    assert all(t["connect"]["ok"] for t in p["targets"])
    codes = [w["code"] for w in p["warnings"]]
    assert "multiple_gateways" in codes
    w = [w for w in p["warnings"] if w["code"] == "multiple_gateways"][0]
    assert "multiple reachable gateway identities detected" in w["message"]
    rc, out, err = svc.run("gateway", "probe", "--url", a.url, "--token",
                           a.token, env={"HOME": str(home),
                                         "OPENCLAW_GATEWAY_PORT": a.port})
    assert "multiple reachable gateway identities detected" in out
    assert "Local state dir ws://127.0.0.1:%d" % b.port in out


def test_restart_says_when_the_limit_defers_it(svc, launcher):
    env = {"CLAWGATE_RESTART_COOLDOWN_MS": "3000"}
    gw = launcher.start(state_dir=svc.state, env=env)
    rc, out, err = svc.run("gateway", "restart", env=env, timeout=120)
    assert rc == 0, out + err
    assert "Gateway restarted (pid %d)" % gw.proc.pid in out
    # at once again: deferred by the limit, and the CLI says so
    rc, out, err = svc.run("gateway", "restart", env=env, timeout=120)
    assert rc == 0, out + err
    assert "may be deferred by the 3s restart limit" in err
    assert "Gateway restarted" in out


def test_config_diff_json(svc, launcher, tmp_path):
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text('{"gateway": {"mode": "local", "port": 1}}')
    b.write_text('{"gateway": {"mode": "local", "port": 2}, '
                 '"logging": {"level": "debug"}}')
    rc, out, err = svc.run("config", "diff", str(a), str(b), "--json")
    assert rc == 0, err
    d = json.loads(out)
    ch = {c["path"]: c for c in d["changes"]}
    assert ch["gateway.port"]["op"] == "change"
    assert ch["gateway.port"]["from"] == 1 and ch["gateway.port"]["to"] == 2
    assert ch["logging.level"]["op"] == "add"


# ---- sd_notify from the daemon, restart under systemd, colour ---------------

def test_daemon_notifies_systemd(launcher, tmp_path):
    import socket
    import time
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(60)

    def recv_until(prefix):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = s.recv(4096).decode()
            if msg.startswith(prefix):
                return dict(kv.split("=", 1) for kv in msg.split("\n"))
        raise AssertionError("no %s datagram" % prefix)

    try:
        gw = launcher.start(env={"NOTIFY_SOCKET": path})
        ready = recv_until("READY=1")
        assert ready["MAINPID"] == str(gw.proc.pid)
        # under systemd stdout is the journal: no token in it
        last = [x for x in gw.stdout().splitlines() if x.strip()][-1]
        assert last == ("Dashboard: http://127.0.0.1:%d/ (the URL with "
                        "the token: clawgate dashboard)" % gw.port)
        rc, out, err = launcher.run(["gateway", "restart"],
                                    state_dir=gw.state_dir, timeout=120)
        assert rc == 0, out + err
        rel = recv_until("RELOADING=1")
        assert int(rel["MONOTONIC_USEC"]) > 0
        # the re-exec keeps the pid: the same MAINPID is ready again
        again = recv_until("READY=1")
        assert again["MAINPID"] == str(gw.proc.pid)
        gw.stop()
        recv_until("STOPPING=1")
    finally:
        s.close()


def test_restart_under_systemd_uses_systemctl(svc):
    rc, out, err = svc.run("gateway", "install")
    assert rc == 0, err
    svc.log.unlink()
    rc, out, err = svc.run("gateway", "restart", "--json")
    assert rc == 0, err
    assert json.loads(out)["result"] == "restarted"
    assert svc.calls() == ["--user show-environment",
                           "--user restart openclaw-gateway.service"]


def run_on_tty(svc, args, env=None, answer=None):
    """Run the CLI on a pseudo-terminal (stdin and stdout), typing answer
    when it asks a question: (rc, output)."""
    import pty
    from harness import BIN_ARGV
    e = dict(os.environ)
    e.update({k: str(v) for k, v in svc.env.items()})
    e.update(OPENCLAW_STATE_DIR=svc.state,
             OPENCLAW_CONFIG_PATH=os.path.join(svc.state, "openclaw.json"),
             HOME=os.path.join(svc.state, "home"),
             OPENCLAW_GATEWAY_PORT=str(svc.port))
    e.pop("NO_COLOR", None)
    for k, v in (env or {}).items():
        e[k] = v
    master, slave = pty.openpty()
    p = subprocess.Popen(list(BIN_ARGV) + args, stdin=slave, stdout=slave,
                         stderr=subprocess.DEVNULL, env=e)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 4096)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
        if answer is not None and b"[y/N]" in b"".join(chunks):
            os.write(master, answer)
            answer = None
    os.close(master)
    return p.wait(timeout=60), b"".join(chunks).decode()


def test_colour_only_on_a_terminal(dsvc):
    os.chmod(dsvc.state, 0o755)  # one warn finding
    rc, out = run_on_tty(dsvc, ["doctor"])
    assert rc == 1 and "\033[33m[warn]" in out, out
    rc, out = run_on_tty(dsvc, ["--no-color", "doctor"])
    assert rc == 1 and "\033[" not in out and "[warn]" in out
    rc, out = run_on_tty(dsvc, ["doctor"], env={"NO_COLOR": "1"})
    assert "\033[" not in out
    rc, out, err = dsvc.run("doctor",
                            env={"OPENCLAW_GATEWAY_PORT": dsvc.port})
    assert "\033[" not in out  # a pipe


def test_devices_rename_arguments_and_call(svc, launcher):
    gw = launcher.start(state_dir=svc.state)
    common = ["--url", gw.url, "--token", gw.token]
    rc, out, err = svc.run("devices", "rename", "--device", "x", *common)
    assert rc == 2 and "--name" in err
    rc, out, err = svc.run("devices", "rename", "--device", "x", "--name",
                           "  ", *common)
    assert rc == 2
    rc, out, err = svc.run("devices", "rename", "--device", "x", "--name",
                           "n" * 65, *common)
    assert rc == 2
    rc, out, err = svc.run("devices", "rename", "--device", "x", "--name",
                           "Kitchen Mac", "--json", *common)
    assert rc != 0          # no such device
    # the CLI's own device (paired silently on loopback) gets the label
    rc, out, err = svc.run("devices", "list", "--json", *common)
    assert rc == 0, err
    dev = json.loads(out)["paired"][0]["deviceId"]
    rc, out, err = svc.run("devices", "rename", "--device", dev, "--name",
                           " Kitchen Mac ", "--json", *common)
    assert rc == 0, out + err
    assert json.loads(out) == {"deviceId": dev, "label": "Kitchen Mac"}
    rc, out, err = svc.run("devices", "list", "--json", *common)
    assert [d.get("displayName") for d in json.loads(out)["paired"]
            if d["deviceId"] == dev] == ["Kitchen Mac"]


def key_paths(o, p=""):
    out = {}
    if isinstance(o, dict):
        for k, v in o.items():
            out[p + "." + k] = type(v).__name__
            out.update(key_paths(v, p + "." + k))
    return out


def test_gateway_status_json_reads_like_openclaws(svc, launcher):
    """Every key path (and its JSON type) of `openclaw gateway status
    --json` as openclaw 2026.9.6 printed it against a gateway on a host
    without a service manager (data/openclaw-gateway-status.json) is in
    ours, so its consumers read ours unchanged."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "data",
                           "openclaw-gateway-status.json")) as f:
        ref = key_paths(json.load(f))
    gw = launcher.start(state_dir=svc.state)
    rc, st, err = status_json(svc, gw, env={"XDG_RUNTIME_DIR": None})
    assert rc == 0, err
    ours = key_paths(st)
    missing = sorted(k for k in ref if k not in ours)
    assert missing == [], missing
    wrong = sorted(k for k in ref if ours[k] != ref[k])
    assert wrong == [], [(k, ref[k], ours[k]) for k in wrong]


def test_doctor_asks_on_a_terminal_before_removing_stale_units(dsvc):
    sysdir = dsvc.tmp / "system"
    sysdir.mkdir()
    stale = sysdir / "clawdbot-gateway.service"
    stale.write_text(STALE_UNIT)
    rc, out = run_on_tty(dsvc, ["doctor", "--fix"], answer=b"n\n")
    assert "Disable and remove the legacy unit clawdbot-gateway.service" \
        in out
    assert stale.exists() and "kept (answered no)" in out
    rc, out = run_on_tty(dsvc, ["doctor", "--fix", "--non-interactive"])
    assert "[y/N]" not in out and stale.exists()
    rc, out = run_on_tty(dsvc, ["doctor", "--fix"], answer=b"y\n")
    assert not stale.exists()
    assert "disable --now clawdbot-gateway.service" in dsvc.calls()


def test_devices_rename_end_to_end(svc, launcher):
    # the CLI renames a paired device; the gateway's device list shows it
    from pairing_util import Device, device_connect
    gw = launcher.start(state_dir=svc.state)
    dev = Device()
    ws, res = device_connect(gw, dev)
    assert res["ok"] is True, res
    ws.close()
    common = ["--url", gw.url, "--token", gw.token]
    rc, out, err = svc.run("devices", "rename", "--device", dev.id,
                           "--name", "Kitchen Mac", "--json", *common)
    assert rc == 0, (out, err)
    admin = gw.connect()
    paired = [d for d in admin.call("device.pair.list")["paired"]
              if d["deviceId"] == dev.id]
    assert paired[0]["displayName"] == "Kitchen Mac"
