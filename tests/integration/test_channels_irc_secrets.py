"""IRC account passwords are owners of the secrets runtime snapshot
(doc/secrets.md, doc/channels.md): a password ref that cannot be resolved
keeps the account off the network with SECRET_SURFACE_UNAVAILABLE in
channels.status and the account in status.degradedSecretOwners; once the
secret exists, `secrets.reload` connects it. ngircd requires a server
password, so connecting proves the resolved value was sent."""
import json
import os
import time

from chathelp import chat_config
from fakeupstream import FakeUpstream
from harness import Launcher
from irchelp import IrcClient, IrcServer, require_ngircd

BOT = "pwbot"
ROOM = "#room"
SERVER_PASS = "srv-pass-7"


def write_private(path, text):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    os.rename(tmp, path)


def account(ws):
    return ws.call("channels.status", {})["channelAccounts"]["irc"][0]


def test_irc_password_ref_cold_then_reload_connects(tmp_root):
    require_ngircd()
    d = os.path.join(tmp_root, "ngircd-pw-%d" % os.getpid())
    os.makedirs(d, exist_ok=True)
    srv = IrcServer(d, password=SERVER_PASS)
    up = FakeUpstream(api_key="sk-fake").start()
    lch = Launcher(tmp_root)
    alice = None
    try:
        alice = IrcClient(srv.port, "alice", password=SERVER_PASS)
        alice.join(ROOM)
        state = lch.prepare()
        keys = os.path.join(state, "irc-keys.json")
        write_private(keys, json.dumps({"other": "x"}))
        irc = {"enabled": True, "host": "127.0.0.1", "port": srv.port,
               "tls": False, "nick": BOT, "channels": [ROOM],
               "password": {"source": "file", "provider": "ircfile",
                            "id": "/irc/server"}}
        cfg = chat_config(up, {"channels": {"irc": irc}})
        cfg["secrets"] = {"providers": {"ircfile": {
            "source": "file", "path": keys, "mode": "json"}}}
        with open(os.path.join(state, "openclaw.json"), "w") as f:
            json.dump(cfg, f)
        gw = lch.start(state_dir=state)
        ws = gw.connect(scopes=["operator.admin"])
        # Cold: not connected, the reason in channels.status.
        deadline = time.monotonic() + 30
        while True:
            acct = account(ws)
            if acct["lastError"]:
                break
            assert time.monotonic() < deadline, acct
            ws.wait_event("channel", timeout=max(
                0.1, deadline - time.monotonic()))
        assert "SECRET_SURFACE_UNAVAILABLE" in acct["lastError"], acct
        assert "channels.irc.password" in acct["lastError"], acct
        assert acct["connected"] is False
        deg = ws.call("status", {})["degradedSecretOwners"]
        assert [(o["ownerKind"], o["ownerId"], o["degradationState"],
                 o["paths"]) for o in deg] == [
            ("account", "irc:default", "cold", ["channels.irc.password"])]
        # The secret appears; secrets.reload resolves it and connects.
        write_private(keys, json.dumps({"irc": {"server": SERVER_PASS}}))
        assert ws.call("secrets.reload", {}) == {"ok": True,
                                                  "warningCount": 0}
        alice.wait(lambda p, c, a: c == "JOIN" and p and
                   p.startswith(BOT + "!") and a[0].lower() == ROOM, 30)
        acct = account(ws)
        assert acct["connected"] is True, acct
        assert ws.call("status", {})["degradedSecretOwners"] == []
        assert SERVER_PASS not in gw.stderr()
        ws.close()
    finally:
        if alice:
            alice.close()
        lch.cleanup()
        up.stop()
        srv.stop()
