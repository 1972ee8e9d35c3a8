"""`clawgate config ...` and `clawgate gateway restart`: validate and plan
offline, get/set/unset/history/diff/rollback against the running gateway."""

import json
import os

from harness import clawgate_only
from test_reload import base_config, rows, wait_ready_again, wait_rows

pytestmark = clawgate_only("clawgate config CLI")


def cli_env(gw):
    return {"OPENCLAW_GATEWAY_PORT": str(gw.port),
            "OPENCLAW_GATEWAY_TOKEN": "T"}


def test_validate_offline(launcher):
    d = launcher.prepare(config=base_config())
    rc, out, err = launcher.run(["config", "validate"], state_dir=d)
    assert rc == 0, err
    assert out.startswith("Config valid: ")
    bad = os.path.join(d, "bad.json")
    with open(bad, "w") as f:
        f.write('{gateway: {port: "x", nope: 1}}')
    rc, out, err = launcher.run(["config", "validate", bad], state_dir=d)
    assert rc == 78
    assert "Invalid config at %s:" % bad in out
    assert "- gateway.port: expected integer, received string" in out
    assert '- gateway.nope: Unrecognized key: "nope"' in out


def test_plan_offline(launcher):
    d = launcher.prepare(config=base_config())
    other = os.path.join(d, "next.json")
    cfg = base_config(port=1234)
    cfg["gateway"]["controlUi"] = {"allowedOrigins": ["http://x"]}
    with open(other, "w") as f:
        json.dump(cfg, f)
    rc, out, err = launcher.run(["config", "plan", other], state_dir=d,
                                env={"OPENCLAW_GATEWAY_PORT": "9"})
    assert rc == 0, err
    assert "offline" in out
    assert "restart gateway.port" in out
    assert "hot     gateway.controlUi.allowedOrigins" in out
    assert "needs a gateway restart" in out


def test_get_set_unset_history_diff_rollback(launcher):
    gw = launcher.start(config=base_config(),
                        env={"CLAWGATE_RESTART_COOLDOWN_MS": "0"})
    env = cli_env(gw)
    n = len(wait_rows(gw, 1))
    rc, out, err = launcher.run(["config", "set",
                                 "gateway.controlUi.allowedOrigins",
                                 '["http://cli"]'],
                                state_dir=gw.state_dir, env=env)
    assert rc == 0, err
    assert "Updated gateway.controlUi.allowedOrigins (applied hot" in out
    wait_rows(gw, n + 1)
    rc, out, err = launcher.run(["config", "get",
                                 "gateway.controlUi.allowedOrigins"],
                                state_dir=gw.state_dir, env=env)
    assert rc == 0 and json.loads(out) == ["http://cli"], (out, err)
    rc, out, err = launcher.run(["config", "get", "gateway.mode"],
                                state_dir=gw.state_dir, env=env)
    assert out == "local\n"
    rc, out, err = launcher.run(["config", "diff"], state_dir=gw.state_dir,
                                env=env)
    assert rc == 0, err
    assert '+ gateway.controlUi.allowedOrigins: ["http://cli"]  [hot]' in out
    rc, out, err = launcher.run(["config", "unset", "gateway.controlUi"],
                                state_dir=gw.state_dir, env=env)
    assert rc == 0, err
    wait_rows(gw, n + 2)
    rc, out, err = launcher.run(["config", "history"],
                                state_dir=gw.state_dir, env=env)
    assert rc == 0, err
    assert "startup" in out and "rpc" in out
    rc, out, err = launcher.run(["config", "rollback", str(n + 1)],
                                state_dir=gw.state_dir, env=env)
    assert rc == 0, err
    assert "Rolled back to snapshot %d" % (n + 1) in out
    cfg = json.load(open(gw.config_path))
    assert cfg["gateway"]["controlUi"]["allowedOrigins"] == ["http://cli"]
    assert rows(gw)[-1]["source"] == "rollback"


def test_gateway_restart_command(launcher):
    gw = launcher.start(config=base_config(),
                        env={"CLAWGATE_RESTART_COOLDOWN_MS": "0"})
    n = len(wait_rows(gw, 1))
    rc, out, err = launcher.run(["gateway", "restart"],
                                state_dir=gw.state_dir, env=cli_env(gw))
    assert rc == 0, err
    assert out == "Gateway restarted (pid %d).\n" % gw.proc.pid
    wait_ready_again(gw)
    assert wait_rows(gw, n + 1)[-1]["source"] == "restart"
