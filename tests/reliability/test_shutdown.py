"""One lifecycle (finding D2): SIGTERM and the in-place restart (SIGUSR1)
under load end cleanly, with no sanitizer report (run it with an ASan
build: CLAWGATE_BIN=build/asan/clawgate)."""

import signal
import tempfile
import threading
import time

import pytest
import requests

from chathelp import chat_config
from fakeupstream import FakeUpstream
from harness import sanitizer_report, wait_ready
from irchelp import IrcClient, IrcServer, require_ngircd
from relhelp import figure, scale


class Load:
    """3 keep-alive HTTP clients looping on /tools/invoke and /v1/models,
    3 WS clients looping on RPCs, until stopped."""

    def __init__(self, gw):
        self.gw = gw
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._http, daemon=True)
                        for _ in range(3)]
        self.threads += [threading.Thread(target=self._ws, daemon=True)
                         for _ in range(3)]
        self.done = 0

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(15)

    def _http(self):
        hdr = {"Authorization": "Bearer " + self.gw.token}
        while not self.stop.is_set():
            try:
                with requests.Session() as s:
                    while not self.stop.is_set():
                        s.post(self.gw.http_base + "/tools/invoke",
                               json={"tool": "sessions_list", "args": {}},
                               headers=hdr, timeout=5)
                        s.get(self.gw.http_base + "/v1/models",
                              headers=hdr, timeout=5)
                        self.done += 1
            except (requests.RequestException, OSError):
                time.sleep(0.02)

    def _ws(self):
        while not self.stop.is_set():
            try:
                c = self.gw.connect(scopes=["operator.read",
                                            "operator.write"])
                while not self.stop.is_set():
                    c.request("sessions.list", {}, timeout=5)
                    c.request("health", {}, timeout=5)
                    self.done += 1
            except Exception:
                time.sleep(0.02)
            finally:
                try:
                    c.close()
                except Exception:
                    pass


def _wait_load(load, n=20, timeout=20):
    deadline = time.monotonic() + timeout
    while load.done < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_sigterm_under_load(launcher):
    trials = scale(2, 20)
    bad = 0
    for _ in range(trials):
        gw = launcher.start()
        with Load(gw) as load:
            _wait_load(load)
            assert load.done >= 20, "no load before the signal"
            rc = gw.stop(signal.SIGTERM)
        rep = sanitizer_report(gw.stderr())
        if rc != 0 or rep:
            bad += 1
        assert rc == 0, "exit %s after SIGTERM; stderr:\n%s" % (
            rc, gw.stderr()[-3000:])
        assert rep is None, rep
    figure("sigterm_under_load", "%d trials, %d bad" % (trials, bad))


def test_sigusr1_restart_under_load(launcher):
    trials = scale(2, 20)
    gw = launcher.start(env={"CLAWGATE_RESTART_COOLDOWN_MS": "1"})
    pid = gw.proc.pid
    with Load(gw) as load:
        for i in range(trials):
            _wait_load(load, n=load.done + 10)
            gw.proc.send_signal(signal.SIGUSR1)
            # the restart is in place: same pid, a new start printed
            deadline = time.monotonic() + 30
            while gw.stdout().count("Gateway URL:") < i + 2 and \
                    gw.proc.poll() is None and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            assert gw.proc.poll() is None, gw.stderr()[-3000:]
            assert gw.stdout().count("Gateway URL:") == i + 2
            wait_ready(gw, timeout=20)
            assert gw.proc.pid == pid
    rep = sanitizer_report(gw.stderr())
    assert rep is None, rep
    assert gw.stop() == 0
    assert sanitizer_report(gw.stderr()) is None
    figure("sigusr1_under_load", "%d restarts, 0 bad" % trials)


# ---- the threads added in the channel and cron work ----------------------
# SIGTERM and SIGUSR1 while a cron job runs every second (an agent turn
# whose answer is announced to IRC, in flight when the signal lands) and
# an IRC account is connected to a real ngircd on loopback with a room
# message being answered: the cron scheduler thread, the channel loop
# thread, their agent runs and store writes all meet the stop order.

ROOM = "#room"
BOT = "clawbot"


@pytest.fixture
def irc_world(tmp_root):
    require_ngircd()
    d = tempfile.mkdtemp(prefix="ngircd-", dir=tmp_root)
    srv = IrcServer(d)
    up = FakeUpstream(api_key="sk-fake").start()
    alice = IrcClient(srv.port, "alice")
    alice.join(ROOM)
    w = type("World", (), {})()
    w.srv, w.up, w.alice = srv, up, alice
    yield w
    alice.close()
    up.stop()
    srv.stop()


def _irc_cron_config(w):
    return chat_config(w.up, {
        "channels": {"irc": {
            "enabled": True, "host": "127.0.0.1", "port": w.srv.port,
            "tls": False, "nick": BOT, "channels": [ROOM],
            "groupPolicy": "allowlist",
            "groups": {ROOM: {"allowFrom": ["*"]}}}},
        "cron": {"maxConcurrentRuns": 2}})


def _bot_joined(w):
    w.alice.wait(lambda p, c, a: c == "JOIN" and p and
                 p.split("!")[0].startswith(BOT) and
                 a[0].lower() == ROOM, 30)


def _cron_every_second(gw):
    """Add the job (once: it is in SQLite across restarts); return a WS
    client that waits until a run of it is in flight."""
    ws = gw.connect(scopes=["operator.admin"])
    if not ws.call("cron.list", {}).get("jobs"):
        ws.call("cron.add", {
            "name": "every second", "sessionTarget": "isolated",
            "wakeMode": "now",
            "schedule": {"kind": "every", "everyMs": 1000},
            "payload": {"kind": "agentTurn",
                        "message": "[[slow:600]] [[reply:tick]] go"},
            "delivery": {"mode": "announce", "channel": "irc",
                         "to": ROOM}})
    return ws


def _in_flight(w, ws):
    """A cron run started and a room message being answered."""
    ws.wait_event("cron", timeout=30,
                  pred=lambda f: f["payload"].get("action") == "started")
    w.alice.send("PRIVMSG %s :%s: [[slow:800]] [[reply:hi]] hello"
                 % (ROOM, BOT))


def test_sigterm_with_cron_and_irc(launcher, irc_world):
    w = irc_world
    trials = scale(2, 10)
    for _ in range(trials):
        gw = launcher.start(config=_irc_cron_config(w))
        _bot_joined(w)
        ws = _cron_every_second(gw)
        _in_flight(w, ws)
        rc = gw.stop(signal.SIGTERM)
        rep = sanitizer_report(gw.stderr())
        assert rc == 0, "exit %s after SIGTERM; stderr:\n%s" % (
            rc, gw.stderr()[-3000:])
        assert rep is None, rep
        # the bot said goodbye: the channel thread ran its stop
        w.alice.wait(lambda p, c, a: c == "QUIT" and p and
                     p.split("!")[0].startswith(BOT), 30)
    figure("sigterm_cron_irc", "%d trials, 0 bad" % trials)


@pytest.mark.parametrize("mode", ["re-exec", "in-process"])
def test_sigusr1_with_cron_and_irc(launcher, irc_world, mode):
    """The in-place restart, both ways: re-exec (the default) and in the
    same process (OPENCLAW_NO_RESPAWN=1: every thread of the old run is
    gone before the new one starts, in the same address space)."""
    w = irc_world
    trials = scale(2, 10)
    env = {"CLAWGATE_RESTART_COOLDOWN_MS": "1"}
    if mode == "in-process":
        env["OPENCLAW_NO_RESPAWN"] = "1"
    gw = launcher.start(config=_irc_cron_config(w), env=env)
    pid = gw.proc.pid
    _bot_joined(w)
    for i in range(trials):
        ws = _cron_every_second(gw)
        _in_flight(w, ws)
        gw.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while gw.stdout().count("Gateway URL:") < i + 2 and \
                gw.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gw.proc.poll() is None, gw.stderr()[-3000:]
        assert gw.stdout().count("Gateway URL:") == i + 2
        wait_ready(gw, timeout=20)
        assert gw.proc.pid == pid
        # the restarted process connects to IRC again
        _bot_joined(w)
        rep = sanitizer_report(gw.stderr())
        assert rep is None, rep
    if mode == "in-process":
        assert "in-process restart" in gw.stderr() + gw.stdout()
    assert gw.stop() == 0
    assert sanitizer_report(gw.stderr()) is None
    figure("sigusr1_cron_irc_" + mode, "%d restarts, 0 bad" % trials)
