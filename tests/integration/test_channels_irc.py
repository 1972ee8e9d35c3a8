"""IRC channel (issue 16) against a real IRC server (Debian's ngircd on a
loopback port) with the scripted fake upstream: the bot joins, DM pairing
holds unknown senders, approval lets them through (and survives kill -9),
mention gating in channels, long answers split over lines, reconnect and
rejoin after an operator KILL."""

import os
import signal
import time

import pytest

from chathelp import chat_config
from fakeupstream import FakeUpstream
from harness import Launcher
from irchelp import IrcClient, IrcServer, require_ngircd
from harness import clean_env
import subprocess

BOT = "clawbot"
ROOM = "#room"


def irc_config(up, port, extra=None):
    irc = {"enabled": True, "host": "127.0.0.1", "port": port,
           "tls": False, "nick": BOT, "channels": [ROOM],
           "groupPolicy": "allowlist",
           "groups": {ROOM: {"allowFrom": ["*"],
                             "systemPrompt": "You are in the test room."}}}
    irc.update(extra or {})
    return chat_config(up, {"channels": {"irc": irc}})


@pytest.fixture(scope="module")
def world(tmp_root):
    require_ngircd()
    d = os.path.join(tmp_root, "ngircd-%d" % os.getpid())
    os.makedirs(d, exist_ok=True)
    srv = IrcServer(d)
    up = FakeUpstream(api_key="sk-fake").start()
    alice = IrcClient(srv.port, "alice")
    alice.join(ROOM)
    lch = Launcher(tmp_root)
    gw = lch.start(config=irc_config(up, srv.port))
    # The bot registers and joins the room the person is in.
    alice.wait(lambda p, c, a: c == "JOIN" and p.startswith(BOT + "!") and
               a[0].lower() == ROOM)
    w = type("World", (), {})()
    w.srv, w.up, w.alice, w.gw, w.lch = srv, up, alice, gw, lch
    yield w
    alice.close()
    lch.cleanup()
    up.stop()
    srv.stop()


def admin(gw):
    return gw.connect(scopes=["operator.admin", "operator.pairing"])


def pairing_code(client):
    """Read the pairing reply lines; return the code."""
    lines = []
    while True:
        text = client.privmsgs_from(BOT)
        lines.append(text)
        if text.startswith("Ask the bot owner"):
            break
    assert lines[0] == "OpenClaw: access not configured."
    code = [s for s in lines if s.startswith("Pairing code:")][0]
    code = code.split(":", 1)[1].strip()
    assert lines[-1].endswith("openclaw pairing approve irc " + code)
    return code


def test_bot_connected_and_status(world):
    ws = admin(world.gw)
    st = ws.call("channels.status", {"probe": True})
    assert st["channelOrder"] == ["irc"]
    acct = st["channelAccounts"]["irc"][0]
    assert acct["accountId"] == "default"
    assert acct["connected"] is True and acct["running"] is True
    assert acct["dmPolicy"] == "pairing"
    assert acct["probe"]["nick"] == BOT
    assert st["channelDefaultAccountId"]["irc"] == "default"
    h = ws.call("health", {"probe": True})
    assert h["channelOrder"] == ["irc"]
    assert h["channels"]["irc"]["connected"] is True
    assert h["channels"]["irc"]["accounts"]["default"]["connected"] is True
    r = world.gw.http("GET", "/readyz")
    assert r.status_code == 200


def test_status_deep_channel_section(world):
    """`clawgate status --deep` lists each channel account and its state."""
    gw, lch = world.gw, world.lch
    cli = ["--url", gw.url, "--token", "T"]
    rc, out, err = lch.run(["status", "--deep", "--json"] + cli,
                           state_dir=gw.state_dir)
    assert rc == 0, err
    import json
    acct = json.loads(out)["channels"]["irc"][0]
    assert acct["accountId"] == "default" and acct["connected"] is True
    rc, out, err = lch.run(["status", "--deep"] + cli,
                           state_dir=gw.state_dir)
    assert rc == 0, err
    assert "Channels:\n  irc default: connected\n" in out, out
    # Without --deep no channel probe is made and no section printed.
    rc, out, err = lch.run(["status"] + cli, state_dir=gw.state_dir)
    assert rc == 0 and "Channels:" not in out, out


def test_dm_pairing_then_approve(world):
    up, alice = world.up, world.alice
    before = up.snapshot()["chat"]
    alice.send("PRIVMSG %s :hello bot" % BOT)
    code = pairing_code(alice)
    assert len(code) == 8
    assert not set(code) & set("01OI")
    assert code == code.upper()
    # The DM was held: the agent was never asked.
    assert up.snapshot()["chat"] == before
    ws = admin(world.gw)
    lst = ws.call("channels.pairing.list", {})
    assert lst["limits"] == {"pendingPerAccount": 3, "ttlMs": 3600000}
    reqs = [r for r in lst["requests"] if r["senderId"].startswith("alice!")]
    assert len(reqs) == 1
    req = reqs[0]
    assert req["channel"] == "irc" and req["accountId"] == "default"
    # A second DM does not send the code again and does not reach the
    # agent; the sender's request is refreshed.
    alice.send("PRIVMSG %s :still me" % BOT)
    ev = ws.wait_event("channel", pred=lambda e: e["payload"].get(
        "type") == "message" and e["payload"]["senderId"] ==
        req["senderId"])["payload"]
    assert ev["status"] == "pairing" and ev["reason"] == "dmPolicy=pairing"
    assert ev["codeSent"] is False
    res = ws.call("channels.pairing.approve", {
        "channel": "irc", "accountId": "default",
        "requestId": req["requestId"]})
    assert res["senderId"] == req["senderId"]
    assert res["notification"] == "not-requested"
    assert up.snapshot()["chat"] == before
    alice.send("PRIVMSG %s :[[reply:pong from the agent]] hi" % BOT)
    assert alice.privmsgs_from(BOT) == "pong from the agent"
    # The code was sent once, for the new request only.
    assert sum("Pairing code: " + code in s for s in alice.seen) == 1
    keys = [s["key"] for s in ws.call("sessions.list", {})["sessions"]]
    assert "agent:main:main" in keys
    # Gone from the list once approved.
    lst = ws.call("channels.pairing.list", {})
    assert not [r for r in lst["requests"]
                if r["senderId"] == req["senderId"]]


def test_channel_mention_gating(world):
    up, alice = world.up, world.alice
    before = up.snapshot()["chat"]
    alice.send("PRIVMSG %s :[[reply:should never be said]] hello all"
               % ROOM)
    alice.send("PRIVMSG %s :%s: [[reply:answer in room]] ping" % (ROOM, BOT))
    assert alice.privmsgs_from(BOT, ROOM) == "answer in room"
    # Ingress is ordered per account: the unmentioned one was decided
    # first, and dropped (missing-mention) without an upstream call.
    assert up.snapshot()["chat"] == before + 1
    assert not any("should never be said" in s for s in alice.seen)
    # groups["#room"].systemPrompt reaches the model as system text.
    body = up.snapshot()["requests"][-1]
    systems = [m["content"] for m in body["messages"]
               if m["role"] in ("system", "developer")]
    assert any("You are in the test room." in str(c) for c in systems)
    ws = admin(world.gw)
    keys = [s["key"] for s in ws.call("sessions.list", {})["sessions"]]
    assert "agent:main:irc:group:#room" in keys


def test_long_answer_split_over_lines(world):
    up, alice = world.up, world.alice
    words = ["w%03d-\u00e9t\u00e9" % i for i in range(300)]
    up.push(reply=" ".join(words))
    alice.send("PRIVMSG %s :%s, tell me a long story" % (ROOM, BOT))
    got, lines = [], 0
    while len(got) < 300:
        _, _, a, raw = alice.wait(lambda p, c, a: c == "PRIVMSG" and p and
                                  p.split("!")[0] == BOT)
        assert len(raw.encode("utf-8")) + 2 <= 512
        got += a[1].split()
        lines += 1
    assert got == words
    assert lines >= 4


def test_kill_reconnect_rejoin(world):
    srv = world.srv
    op = IrcClient(srv.port, "oper1")
    op.oper()
    op.send("KILL %s :testing reconnect" % BOT)
    # The person in the room sees the bot quit, then come back and join.
    world.alice.wait(lambda p, c, a: c == "QUIT" and p and
                     p.startswith(BOT + "!"))
    world.alice.wait(lambda p, c, a: c == "JOIN" and p and
                     p.startswith(BOT + "!") and a[0].lower() == ROOM, 30)
    op.close()
    ws = admin(world.gw)
    acct = ws.call("channels.status", {})["channelAccounts"]["irc"][0]
    assert acct["lastConnectedAt"] is not None
    # Still answering after the reconnect.
    world.alice.send("PRIVMSG %s :[[reply:back again]] %s?" % (ROOM, BOT))
    assert world.alice.privmsgs_from(BOT, ROOM) == "back again"


def test_approval_survives_kill9(tmp_root, world):
    up, srv = world.up, world.srv
    lch = Launcher(tmp_root)
    try:
        cfg = irc_config(up, srv.port, {"nick": "bot2", "channels": []})
        gw = lch.start(config=cfg)
        bob = IrcClient(srv.port, "bob")
        bob.send("PRIVMSG bot2 :let me in")
        while True:
            text = bob.privmsgs_from("bot2")
            if text.startswith("Pairing code:"):
                code = text.split(":", 1)[1].strip()
            if text.startswith("Ask the bot owner"):
                break
        # Approved with the operator CLI, by the code the person got.
        cli = ["--url", gw.url, "--token", "T"]
        rc, out, err = lch.run(["pairing", "list", "irc"] + cli,
                               state_dir=gw.state_dir)
        assert rc == 0, err
        assert "irc:default  sender bob!" in out
        rc, out, err = lch.run(["pairing", "approve", "irc", code] + cli,
                               state_dir=gw.state_dir)
        assert rc == 0, err
        assert out.startswith("Approved irc sender bob!")
        # The CLI bootstraps the first command owner (no owner before).
        import json
        with open(gw.config_path) as f:
            owners = json.load(f)["commands"]["ownerAllowFrom"]
        assert owners == ["irc:" + out.split("sender ", 1)[1].rstrip(".\n")]
        # Writing commands.* restarts the gateway in place (a restart
        # key): the next command may meet the restart; it is retried
        # until the gateway answers again (bounded).
        deadline = time.monotonic() + 60
        while True:
            rc, out, err = lch.run(["pairing", "list", "irc"] + cli,
                                   state_dir=gw.state_dir)
            if rc == 0 or time.monotonic() > deadline:
                break
        assert rc == 0, err
        assert out.strip() == "No pending DM access requests."
        os.killpg(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(10)
        # The new process may find the old nick still taken (the server
        # notices the dead connection on its own schedule): ask its nick.
        gw2 = lch.start(state_dir=gw.state_dir, port=gw.port)
        ws2 = admin(gw2)
        deadline = time.monotonic() + 30
        while not ws2.call("channels.status", {})["channelAccounts"][
                "irc"][0]["connected"]:
            assert time.monotonic() < deadline
            ws2.wait_event("channel", timeout=deadline - time.monotonic())
        nick = ws2.call("channels.status", {"probe": True})[
            "channelAccounts"]["irc"][0]["probe"]["nick"]
        bob.send("PRIVMSG %s :[[reply:welcome back]] hi" % nick)
        assert bob.privmsgs_from(nick) == "welcome back"
        bob.close()
    finally:
        lch.cleanup()


def test_channels_cli_stop_start(world):
    gw, lch = world.gw, world.lch
    cli = ["--url", gw.url, "--token", "T"]
    rc, out, err = lch.run(["channels", "status", "--probe"] + cli,
                           state_dir=gw.state_dir)
    assert rc == 0, err
    assert "default: enabled, running, connected, dm pairing" in out
    rc, out, err = lch.run(["channels", "stop", "irc"] + cli,
                           state_dir=gw.state_dir)
    assert rc == 0 and out.strip() == "Stopped irc.", (out, err)
    world.alice.wait(lambda p, c, a: c == "QUIT" and p and
                     p.startswith(BOT + "!"))
    ws = admin(gw)
    acct = ws.call("channels.status", {})["channelAccounts"]["irc"][0]
    assert acct["running"] is False and acct["connected"] is False
    assert acct["lastStopAt"] is not None
    # A message while stopped is not seen; start brings the bot back.
    rc, out, err = lch.run(["channels", "start", "irc"] + cli,
                           state_dir=gw.state_dir)
    assert rc == 0, err
    world.alice.wait(lambda p, c, a: c == "JOIN" and p and
                     p.startswith(BOT + "!") and a[0].lower() == ROOM)
    res = ws.request("channels.stop", {"channel": "nope"})
    assert res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"


def test_send_method(world):
    ws = admin(world.gw)
    res = ws.call("send", {"to": ROOM, "channel": "irc",
                           "message": "**hello** from `send`",
                           "idempotencyKey": "k1"})
    assert res["channel"] == "irc" and res["chatId"] == ROOM
    assert world.alice.privmsgs_from(BOT, ROOM) == "hello from send"
    res = ws.request("send", {"to": "bad target", "channel": "irc",
                              "message": "x", "idempotencyKey": "k2"})
    assert res["ok"] is False
    res = ws.request("send", {"to": ROOM, "idempotencyKey": "k3",
                              "bogus": 1})
    assert res["error"]["code"] == "INVALID_REQUEST"


def test_tls_verified(tmp_root, world):
    """TLS on by default: a server whose CA is trusted (SSL_CERT_FILE)
    works; the same server without that trust is refused."""
    d = os.path.join(tmp_root, "ngircd-tls-%d" % os.getpid())
    os.makedirs(d, exist_ok=True)
    srv = IrcServer(d, tls=True)
    lch = Launcher(tmp_root)
    try:
        cfg = irc_config(world.up, srv.tls_port, {"nick": "tlsbot"})
        del cfg["channels"]["irc"]["tls"]        # default: true
        carol = IrcClient(srv.port, "carol")
        carol.join(ROOM)
        lch.start(config=cfg, env={"SSL_CERT_FILE": srv.ca})
        carol.wait(lambda p, c, a: c == "JOIN" and p and
                   p.startswith("tlsbot!") and a[0].lower() == ROOM)
        carol.send("PRIVMSG %s :tlsbot: [[reply:over tls]] hi" % ROOM)
        assert carol.privmsgs_from("tlsbot", ROOM) == "over tls"
        carol.close()
        # Not trusted: no connection, the reason in channels.status.
        cfg = irc_config(world.up, srv.tls_port, {"nick": "badbot"})
        del cfg["channels"]["irc"]["tls"]
        gw = lch.start(config=cfg, env={"SSL_CERT_FILE": os.path.join(
            d, "srv.key")})
        ws = admin(gw)
        deadline = time.monotonic() + 30
        while True:
            acct = ws.call("channels.status", {})["channelAccounts"][
                "irc"][0]
            if acct["lastError"]:
                break
            assert time.monotonic() < deadline, acct
            ws.wait_event("channel", timeout=max(
                0.1, deadline - time.monotonic()))
        assert "certificate verif" in acct["lastError"], acct
        assert acct["connected"] is False
        assert acct["mode"] == "tls"
    finally:
        lch.cleanup()
        srv.stop()


def test_reload_restarts_only_changed_accounts(world):
    """Adding a named account starts it and leaves the default one
    running; removing it stops it (config file edit, hot reload)."""
    import json
    gw, alice = world.gw, world.alice
    ws = admin(gw)

    def acct(name):
        for a in ws.call("channels.status", {})["channelAccounts"]["irc"]:
            if a["accountId"] == name:
                return a
        return None
    before = acct("default")["lastStartAt"]
    with open(gw.config_path) as f:
        cfg = json.load(f)
    cfg["channels"]["irc"]["accounts"] = {"work": {"nick": "workbot"}}
    with open(gw.config_path, "w") as f:
        json.dump(cfg, f)
    alice.wait(lambda p, c, a: c == "JOIN" and p and
               p.startswith("workbot!") and a[0].lower() == ROOM, 30)
    assert acct("default")["lastStartAt"] == before
    assert acct("work")["connected"] is True
    del cfg["channels"]["irc"]["accounts"]
    with open(gw.config_path, "w") as f:
        json.dump(cfg, f)
    alice.wait(lambda p, c, a: c == "QUIT" and p and
               p.startswith("workbot!"), 30)
    assert acct("work") is None
    assert acct("default")["lastStartAt"] == before


def test_accepted_message_recovered_after_kill9(tmp_root, world):
    """A channel message accepted (ingress row written) whose answer was
    still being computed when the gateway died is answered after the
    restart."""
    up, srv = world.up, world.srv
    lch = Launcher(tmp_root)
    try:
        dave = IrcClient(srv.port, "dave")
        dave.join("#rec")
        irc = {"nick": "rbot", "channels": ["#rec"],
               "groups": {"#rec": {"allowFrom": ["*"]}}}
        gw = lch.start(config=irc_config(up, srv.port, irc))
        dave.wait(lambda p, c, a: c == "JOIN" and p and
                  p.startswith("rbot!"))
        up.reset()
        up.push(hang=True)
        dave.send("PRIVMSG #rec :rbot: recover me")
        up.wait(lambda st: st["inflight"] >= 1, 30)
        os.killpg(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(10)
        lch.start(state_dir=gw.state_dir, port=gw.port)
        # The fake upstream's default answer echoes the user text.
        _, _, a, _ = dave.wait(lambda p, c, a: c == "PRIVMSG" and p and
                               p.startswith("rbot") and a[0] == "#rec", 60)
        text = a[1]
        assert text == "echo: rbot: recover me", text
        dave.close()
    finally:
        up.reset()
        lch.cleanup()


def test_pairing_capped_and_dismiss(world):
    """A DM flood from many nicks: at most 3 pending requests per account,
    the others get nothing; dismissing one makes room again."""
    ws = admin(world.gw)
    for r in ws.call("channels.pairing.list", {})["requests"]:
        ws.call("channels.pairing.dismiss", {
            "channel": "irc", "accountId": "default",
            "requestId": r["requestId"]})
    people = [IrcClient(world.srv.port, "flood%d" % i) for i in range(5)]

    def decision(nick):
        return ws.wait_event("channel", pred=lambda e: e["payload"].get(
            "type") == "message" and e["payload"]["senderId"].startswith(
            nick + "!"))["payload"]
    codes = []
    for p in people:
        p.send("PRIVMSG %s :let me in" % BOT)
        d = decision(p.nick)
        assert d["status"] == "pairing"
        codes.append(d["codeSent"])
    assert codes == [True, True, True, False, False]
    sent = [p.nick for p in people
            if any("Pairing code:" in s for s in p.seen)]
    lst = ws.call("channels.pairing.list", {})["requests"]
    assert len(lst) == 3
    pending = sorted(r["senderId"].split("!")[0] for r in lst)
    assert pending == ["flood0", "flood1", "flood2"]
    # The first three got their code; the last two got nothing.
    for p in people[:3]:
        pairing_code(p)
    assert "flood3" not in sent and "flood4" not in sent
    res = ws.call("channels.pairing.dismiss", {
        "channel": "irc", "accountId": "default",
        "requestId": lst[0]["requestId"]})
    assert res["senderId"] == lst[0]["senderId"]
    res = ws.request("channels.pairing.dismiss", {
        "channel": "irc", "accountId": "default",
        "requestId": lst[0]["requestId"]})
    assert res["error"]["message"] == \
        "pending DM access request no longer exists"
    people[3].send("PRIVMSG %s :again" % BOT)
    d = decision("flood3")
    assert d["codeSent"] is True
    pairing_code(people[3])
    for p in people:
        p.close()


def test_real_openclaw_channels_status(world):
    """The real `openclaw channels status --probe` (2026.9.6) against
    clawgate shows the IRC account connected (skipped without the peer)."""
    from test_peer_cli import _OK, _WHY, OC
    if not _OK:
        pytest.skip(_WHY)
    env = clean_env()
    env.update(OC_URL=world.gw.url, OC_TOKEN="T")
    p = subprocess.run(["bash", OC, "channels", "status", "--probe"],
                       capture_output=True, env=env, timeout=120,
                       stdin=subprocess.DEVNULL)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out + p.stderr.decode("utf-8", "replace")
    assert "Gateway reachable." in out
    assert "IRC default: enabled, configured, running, connected" in out
    assert "dm:pairing" in out
