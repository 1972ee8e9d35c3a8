"""The IRC adapter against a scripted fake IRC server (a socket the test
drives line by line): nick collision at registration, PING/PONG, and bad
input from the server (a line growing past 8 KB without CRLF, an over-long
line, malformed lines, colour codes and invalid UTF-8) answered with a
bounded drop, never a crash; the next good message is still served."""

import json
import socket

import pytest

from chathelp import chat_config
from fakeupstream import FakeUpstream
from harness import Launcher


class FakeIrc:
    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.port = self.ls.getsockname()[1]
        self.conn = None
        self.buf = b""

    def accept(self, timeout=30):
        self.ls.settimeout(timeout)
        self.conn, _ = self.ls.accept()
        self.conn.settimeout(30)

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.conn.recv(65536)
            assert data, "gateway closed the connection"
            self.buf += data
        raw, self.buf = self.buf.split(b"\r\n", 1)
        return raw.decode("utf-8", "replace")

    def expect(self, pred):
        seen = []
        while True:
            s = self.line()
            seen.append(s)
            if pred(s):
                return s
            assert len(seen) < 200, seen

    def send(self, data):
        self.conn.sendall(data)

    def close(self):
        if self.conn:
            self.conn.close()
        self.ls.close()


def make_world(tmp_root, env=None):
    srv = FakeIrc()
    up = FakeUpstream(api_key="sk-fake").start()
    lch = Launcher(tmp_root)
    cfg = chat_config(up, {"channels": {"irc": {
        "host": "127.0.0.1", "port": srv.port, "tls": False,
        "nick": "clawbot", "dmPolicy": "open", "allowFrom": ["*"]}}})
    gw = lch.start(config=cfg, env=env)
    srv.accept()
    return srv, up, gw, lch


@pytest.fixture
def fake_world(tmp_root):
    srv, up, gw, lch = make_world(tmp_root)
    yield srv, up, gw
    lch.cleanup()
    up.stop()
    srv.close()


@pytest.fixture
def stall_world(tmp_root):
    # A shorter registration bound (default 30 s) so that a stalled server
    # shows within the test; still far above a reply's round trip.
    srv, up, gw, lch = make_world(tmp_root, env={
        "CLAWGATE_IRC_REGISTER_TIMEOUT_MS": "5000"})
    yield srv, up, gw
    lch.cleanup()
    up.stop()
    srv.close()


def register(srv):
    srv.expect(lambda s: s.startswith("CAP LS"))
    srv.send(b":fake CAP * LS :multi-prefix\r\n")
    srv.expect(lambda s: s == "NICK clawbot")
    srv.send(b":fake 433 * clawbot :Nickname already in use\r\n")
    srv.expect(lambda s: s == "NICK clawbot_1")
    srv.send(b":fake 001 clawbot_1 :Welcome\r\n")


def test_bounded_input_and_collision(fake_world):
    srv, up, gw = fake_world
    register(srv)
    ws = gw.connect(scopes=["operator.admin"])
    st = ws.call("channels.status", {"probe": True})
    acct = st["channelAccounts"]["irc"][0]
    assert acct["connected"] is True
    assert acct["probe"]["nick"] == "clawbot_1"
    srv.send(b"PING :abc\r\n")
    srv.expect(lambda s: s == "PONG :abc")
    # 20 KB without CRLF (dropped up to its end), a 9 KB line, junk.
    srv.send(b":x!y@z PRIVMSG clawbot :" + b"A" * 20000)
    srv.send(b"[[reply:must not run]]\r\n")
    srv.send(b":x!y@z PRIVMSG clawbot :" + b"B" * 9000 + b"\r\n")
    srv.send(b":\r\n@only-tags\r\n\x00\x01\r\n:a b\r\n\r\n")
    # Colours stripped, invalid UTF-8 replaced; then answered.
    srv.send(b":alice!~a@host PRIVMSG clawbot :\x0304,12red\x03 \x02b\x02 "
             b"\xff\xfe ok\r\n")
    line = srv.expect(lambda s: s.startswith("PRIVMSG alice :"))
    assert line == "PRIVMSG alice :echo: red b ?? ok"
    bodies = up.snapshot()["requests"]
    users = [m["content"] for b in bodies for m in b["messages"]
             if m["role"] == "user"]
    assert "red b ?? ok" in users
    assert not any("must not run" in u or "BBBB" in u for u in users)
    # CTCP VERSION gets a NOTICE, never a run.
    srv.send(b":alice!~a@host PRIVMSG clawbot_1 :\x01VERSION\x01\r\n")
    srv.expect(lambda s: s.startswith("NOTICE alice :\x01VERSION "))
    assert up.snapshot()["chat"] == 1
    assert gw.alive()


def test_server_error_reconnects(fake_world):
    srv, up, gw = fake_world
    register(srv)
    srv.send(b"ERROR :Closing Link: clawbot_1 (Killed (op (bye)))\r\n")
    srv.conn.close()
    # The adapter comes back by itself (backoff about 1 s).
    srv.accept(30)
    srv.buf = b""
    srv.expect(lambda s: s.startswith("NICK "))
    ws = gw.connect(scopes=["operator.admin"])
    acct = ws.call("channels.status", {})["channelAccounts"]["irc"][0]
    assert acct["reconnectAttempts"] >= 1
    assert "Killed" in (acct["lastError"] or "")
    json.dumps(acct)


def test_server_stalls_or_closes_mid_registration(stall_world):
    srv, up, gw = stall_world
    # Stall: read the registration, answer nothing.
    srv.expect(lambda s: s.startswith("USER "))
    srv.accept(30)          # the adapter gave up and connected again
    srv.buf = b""
    srv.expect(lambda s: s.startswith("NICK "))
    # Close mid-registration: the adapter comes back again.
    srv.conn.close()
    srv.accept(30)
    srv.buf = b""
    register(srv)
    ws = gw.connect(scopes=["operator.admin"])
    acct = ws.call("channels.status", {})["channelAccounts"]["irc"][0]
    assert acct["connected"] is True
    assert gw.alive()


def nickserv_world(tmp_root, extra):
    srv = FakeIrc()
    up = FakeUpstream(api_key="sk-fake").start()
    lch = Launcher(tmp_root)
    irc = {"host": "127.0.0.1", "port": srv.port, "tls": False,
           "nick": "clawbot", "password": "srvpass",
           "nickserv": {"password": "nspass"}, "channels": ["#a"]}
    irc.update(extra)
    gw = lch.start(config=chat_config(up, {"channels": {"irc": irc}}))
    srv.accept()
    return srv, up, gw, lch


def test_sasl_plain_when_offered(tmp_root):
    import base64
    srv, up, gw, lch = nickserv_world(tmp_root, {})
    try:
        assert srv.line() == "PASS srvpass"
        srv.expect(lambda s: s.startswith("CAP LS"))
        srv.send(b":fake CAP * LS :multi-prefix sasl=PLAIN\r\n")
        srv.expect(lambda s: s == "CAP REQ :sasl")
        srv.send(b":fake CAP * ACK :sasl\r\n")
        srv.expect(lambda s: s == "AUTHENTICATE PLAIN")
        srv.send(b"AUTHENTICATE +\r\n")
        auth = srv.expect(lambda s: s.startswith("AUTHENTICATE "))
        assert base64.b64decode(auth.split(" ", 1)[1]) == \
            b"clawbot\0clawbot\0nspass"
        srv.send(b":fake 903 clawbot :SASL authentication successful\r\n")
        srv.expect(lambda s: s == "CAP END")
        srv.send(b":fake 001 clawbot :Welcome\r\n")
        # SASL done: no NickServ IDENTIFY, straight to JOIN.
        line = srv.expect(lambda s: s.startswith("JOIN ") or
                          "IDENTIFY" in s)
        assert line == "JOIN #a"
    finally:
        lch.cleanup()
        up.stop()
        srv.close()


def test_nickserv_identify_without_sasl(tmp_root):
    srv, up, gw, lch = nickserv_world(tmp_root, {})
    try:
        srv.expect(lambda s: s.startswith("CAP LS"))
        srv.send(b":fake CAP * LS :multi-prefix\r\n")
        srv.expect(lambda s: s == "CAP END")
        srv.send(b":fake 001 clawbot :Welcome\r\n")
        assert srv.expect(lambda s: "NickServ" in s) == \
            "PRIVMSG NickServ :IDENTIFY nspass"
        srv.expect(lambda s: s == "JOIN #a")
        # Kicked: rejoins at once.
        srv.send(b":op!o@h KICK #a clawbot :out\r\n")
        srv.expect(lambda s: s == "JOIN #a")
    finally:
        lch.cleanup()
        up.stop()
        srv.close()


def test_ping_lag_and_ping_timeout(tmp_root):
    """The bot PINGs the server (interval shortened for the test); a PONG
    gives the lag in the probe; a server that stops answering is dropped
    (ping timeout) and reconnected."""
    srv, up, gw, lch = make_world(tmp_root, env={
        "CLAWGATE_IRC_PING_MS": "1000"})
    try:
        register(srv)
        ping = srv.expect(lambda s: s.startswith("PING "))
        srv.send(b":fake PONG fake :" + ping.split(":", 1)[1].encode() +
                 b"\r\n")
        ws = gw.connect(scopes=["operator.admin"])
        srv.expect(lambda s: s.startswith("PING "))   # the next one
        probe = ws.call("channels.status", {"probe": True})[
            "channelAccounts"]["irc"][0]["probe"]
        assert probe["connected"] is True and probe["lagMs"] >= 0
        # Silence from here on: the adapter drops and reconnects.
        srv.accept(30)
        srv.buf = b""
        srv.expect(lambda s: s.startswith("NICK "))
        acct = ws.call("channels.status", {})["channelAccounts"]["irc"][0]
        assert acct["lastError"] == "ping timeout"
    finally:
        lch.cleanup()
        up.stop()
        srv.close()
