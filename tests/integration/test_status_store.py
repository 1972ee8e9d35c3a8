"""`clawgate status --deep`: the store section (the writer's commits, the
WAL and its checkpoints, the database's files), read from the daemon's
`status` RPC and the state dir. Without --deep there is no section."""

import json
import os
import re

from harness import require_binary


def status(lch, gw, *extra):
    rc, out, err = lch.run(["status", *extra, "--url", gw.url, "--token",
                            gw.token], state_dir=gw.state_dir)
    assert rc == 0, err
    return out


def test_status_deep_store_section(launcher):
    require_binary()
    gw = launcher.start()
    before = json.loads(status(launcher, gw, "--deep", "--json"))["store"]
    assert before["path"] == os.path.join(gw.state_dir, "state",
                                          "clawgate.sqlite")
    assert before["fileBytes"] > 0
    wal = before["wal"]
    assert 0 < wal["softPages"] <= wal["hardPages"]
    assert wal["pages"] <= wal["pagesMax"]

    # A write through the gateway shows in the writer's figures.
    ws = gw.connect()
    res = ws.call("sessions.patch", {"key": "status-store", "label": "x"})
    assert res["ok"] is True
    ws.close()
    after = json.loads(status(launcher, gw, "--deep", "--json"))["store"]
    assert after["commits"] > before["commits"]
    assert after["writes"] > before["writes"]

    out = status(launcher, gw, "--deep")
    assert "Store: %s (" % before["path"] in out, out
    m = re.search(r"\n  writer: (\d+) writes in (\d+) commits \(", out)
    assert m and int(m.group(1)) >= after["writes"] and \
        int(m.group(2)) >= after["commits"], out
    assert "  WAL: " in out and "  checkpoints: " in out, out

    plain = status(launcher, gw)
    assert "Store:" not in plain, plain
    assert "store" not in json.loads(status(launcher, gw, "--json"))
