#!/usr/bin/env python3
"""IRC channel benchmark (issue 16): inbound message -> answer latency over
IRC vs the same prompt through /v1/chat/completions, and memory per
connected account. Figures, not a test.

    CLAWGATE_BIN=build/normal/clawgate python3 tests/bench/irc.py \
        [--messages 1000] [--senders 50] [--accounts 20]

Starts Debian's ngircd on a loopback port, the scripted fake upstream
(tests/integration/fakeupstream.py) and clawgate with one IRC account under
dmPolicy open + session.dmScope per-peer (one session per sender, so senders
do not queue behind each other). Each of --senders IRC clients sends its
share of --messages DMs one after the other and times each answer. The same
number of requests from the same number of threads then goes through
/v1/chat/completions (non-streaming, one user per thread). The outbound
token bucket is opened (CLAWGATE_IRC_FLOOD_MS=1): the default (500 ms per
line after a burst of 5) would measure the flood control, not the gateway.
Memory: RSS (VmRSS) of a gateway with no channel account, then with
--accounts accounts connected; the difference per account is reported."""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import requests  # noqa: E402

from chathelp import chat_config  # noqa: E402
from fakeupstream import FakeUpstream  # noqa: E402
from harness import Launcher  # noqa: E402
from irchelp import IrcClient, IrcServer  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def irc_run(port, nick, n_msgs, n_senders):
    per = n_msgs // n_senders
    lat = []
    lock = threading.Lock()
    errors = []

    def sender(i):
        try:
            c = IrcClient(port, "p%03d" % i)
            mine = []
            for k in range(per):
                t0 = time.monotonic()
                c.send("PRIVMSG %s :[[reply:ok %d %d]] q" % (nick, i, k))
                text = c.privmsgs_from(nick, timeout=60)
                assert text == "ok %d %d" % (i, k), text
                mine.append((time.monotonic() - t0) * 1000)
            c.close()
            with lock:
                lat.extend(mine)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=sender, args=(i,))
          for i in range(n_senders)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, time.monotonic() - t0, errors


def http_run(gw, n_msgs, n_senders):
    per = n_msgs // n_senders
    lat = []
    lock = threading.Lock()

    def sender(i):
        s = requests.Session()
        mine = []
        for k in range(per):
            t0 = time.monotonic()
            r = s.post(gw.http_base + "/v1/chat/completions",
                       headers={"Authorization": "Bearer T"},
                       json={"model": "openclaw", "user": "u%d" % i,
                             "messages": [{"role": "user", "content":
                                           "[[reply:ok %d %d]] q" % (i, k)}]},
                       timeout=60)
            r.raise_for_status()
            mine.append((time.monotonic() - t0) * 1000)
        with lock:
            lat.extend(mine)

    ts = [threading.Thread(target=sender, args=(i,))
          for i in range(n_senders)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--senders", type=int, default=50)
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--json")
    o = ap.parse_args()
    root = tempfile.mkdtemp(prefix="clawgate-bench-irc-")
    srv_dir = os.path.join(root, "ngircd")
    os.makedirs(srv_dir)
    # ngircd's per-client penalty (about 1 s per command beyond a burst)
    # would measure the server's flood control: it is switched off here.
    srv = IrcServer(srv_dir, extra_limits="MaxPenaltyTime = 0\n")
    up = FakeUpstream(api_key="sk-fake").start()
    lch = Launcher(root)
    out = {}
    try:
        env = {"CLAWGATE_IRC_FLOOD_MS": "1"}
        irc = {"enabled": True, "host": "127.0.0.1", "port": srv.port,
               "tls": False, "nick": "benchbot", "channels": [],
               "dmPolicy": "open", "allowFrom": ["*"]}
        cfg = chat_config(up, {"channels": {"irc": irc},
                               "session": {"dmScope": "per-peer"}})
        gw = lch.start(config=cfg, env=env)
        watcher = IrcClient(srv.port, "watcher")
        watcher.send("WHOIS benchbot")
        watcher.wait(lambda p, c, a: c in ("311", "401"))
        lat, wall, errors = irc_run(srv.port, "benchbot", o.messages,
                                    o.senders)
        if errors:
            print("IRC errors: %s" % errors[:3], file=sys.stderr)
        hl, hwall = http_run(gw, o.messages, o.senders)
        out["irc"] = {"n": len(lat), "p50_ms": round(pct(lat, 50), 2),
                      "p99_ms": round(pct(lat, 99), 2),
                      "mean_ms": round(statistics.mean(lat), 2),
                      "wall_s": round(wall, 2)}
        out["http"] = {"n": len(hl), "p50_ms": round(pct(hl, 50), 2),
                       "p99_ms": round(pct(hl, 99), 2),
                       "mean_ms": round(statistics.mean(hl), 2),
                       "wall_s": round(hwall, 2)}
        watcher.close()
        gw.stop()

        base = lch.start(config=chat_config(up))
        base_rss = rss_kb(base.proc.pid)
        base.stop()
        # The channel-wide keys are the default account: it and
        # accounts-1 named ones make --accounts accounts.
        accts = {"a%02d" % i: {"nick": "mbot%02d" % i}
                 for i in range(o.accounts - 1)}
        irc = {"enabled": True, "host": "127.0.0.1", "port": srv.port,
               "tls": False, "nick": "mbot", "channels": ["#bench"],
               "accounts": accts}
        w = IrcClient(srv.port, "memwatch")
        w.join("#bench")
        gw = lch.start(config=chat_config(up, {"channels": {"irc": irc}}))
        joined = set()
        while len(joined) < o.accounts:
            p, c, a, _ = w.wait(lambda p, c, a: c == "JOIN" and p and
                                p.startswith("mbot"), 60)
            joined.add(p.split("!")[0])
        rss = rss_kb(gw.proc.pid)
        out["memory"] = {"accounts": o.accounts, "base_rss_kb": base_rss,
                         "rss_kb": rss, "per_account_kb": round(
                             (rss - base_rss) / float(o.accounts), 1)}
        w.close()
    finally:
        lch.started and [g.stop() for g in lch.started if g.alive()]
        up.stop()
        srv.stop()
    print("IRC DM -> answer     : n=%(n)d p50 %(p50_ms)s ms  p99 %(p99_ms)s "
          "ms  (wall %(wall_s)s s)" % out["irc"])
    print("/v1/chat/completions : n=%(n)d p50 %(p50_ms)s ms  p99 %(p99_ms)s "
          "ms  (wall %(wall_s)s s)" % out["http"])
    print("memory: %(rss_kb)d kB with %(accounts)d accounts connected vs "
          "%(base_rss_kb)d kB without: %(per_account_kb)s kB/account"
          % out["memory"])
    if o.json:
        with open(o.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
