"""The real Control UI's DM access requests (Settings > Channels) approve
an IRC sender (issue 16): ngircd on a loopback port, the scripted fake
upstream, clawgate with channels.irc, and the UI in headless Chromium
(set-up as for test_ui_browser.py, which these tests skip without)."""

import os

from fakeupstream import FakeUpstream
from harness import clawgate_only
from irchelp import IrcClient, IrcServer, require_ngircd
from test_channels_irc import BOT, ROOM, irc_config, pairing_code
from test_ui_browser import UI_DIR, need_browser, run

pytestmark = clawgate_only("serves the Control UI from the gateway port")


def test_ui_approves_irc_dm_pairing(launcher, tmp_path):
    need_browser()
    require_ngircd()
    d = str(tmp_path / "ngircd")
    os.makedirs(d)
    srv = IrcServer(d)
    up = FakeUpstream(api_key="sk-fake").start()
    alice = None
    try:
        alice = IrcClient(srv.port, "alice")
        alice.join(ROOM)
        gw = launcher.start(config=irc_config(up, srv.port),
                            env={"CLAWGATE_CONTROL_UI_DIR": UI_DIR})
        alice.wait(lambda p, c, a: c == "JOIN" and
                   p.startswith(BOT + "!") and a[0].lower() == ROOM)
        before = up.snapshot()["chat"]
        alice.send("PRIVMSG %s :hello bot" % BOT)
        code = pairing_code(alice)
        ev = run("dmpairing", gw, "dmpairing", sender="alice!")
        req = ev["request"]
        # The page listed the held request (the code stays with the
        # requester: the list carries none); its row shows the sender.
        assert len(code) == 8 and code not in ev["text"]
        assert req["channel"] == "irc" and req["accountId"] == "default"
        assert req["senderId"] in ev["rowText"], ev["rowText"]
        assert req["channelLabel"] in ev["rowText"], ev["rowText"]
        assert req["senderId"] in ev["dialogText"], ev["dialogText"]
        # Approved from the dialog, for that request.
        ap = ev["approve"]
        assert ap["ok"] is True, ap
        assert ap["params"]["requestId"] == req["requestId"]
        assert ap["payload"]["senderId"] == req["senderId"]
        # No RPC of the page failed, and every file came from the gateway.
        failed = {m: v for m, v in ev["methods"].items() if v["failed"]}
        assert failed == {}, failed
        assert "channels.status" in ev["methods"]
        assert ev["http"] == [], ev["http"]
        # Held until now: the agent was never asked.
        assert up.snapshot()["chat"] == before
        # The sender's next DM reaches the agent, whose answer comes back.
        alice.send("PRIVMSG %s :[[reply:pong from the agent]] hi" % BOT)
        assert alice.privmsgs_from(BOT) == "pong from the agent"
        assert up.snapshot()["chat"] == before + 1
    finally:
        if alice:
            alice.close()
        up.stop()
        srv.stop()
