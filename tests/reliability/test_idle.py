"""Idle authenticated sockets: RSS per socket, the time to open them
(tests/bench/wsbench idle, 64 handshakes in flight) and the work the WS
service loop does per connect. 500 (short) or 10,000 (full) connections
from 127.0.0.1 (CLAWGATE_IDLE_SOCKETS overrides), opened in two equal
batches: the per-address pre-auth budget must not refuse a client that
opens many connections at once, and the second batch, opened while the
first is idle, must cost the loop the same work per connect as the
first (status gateway.wsLoop: the events the loop handled; lws's own
poll(2) loop scanned every open fd on each wake-up, which made opening N
sockets quadratic). The check counts work, it does not time it."""

import os
import subprocess
import time

import pytest

from harness import BIN_ARGV
from relhelp import figure, raise_nofile, rss_kb, scale


def _wsbench():
    env = os.environ.get("WSBENCH")
    if env:
        return env
    return os.path.join(os.path.dirname(BIN_ARGV[0]), "tests", "bench",
                        "wsbench")


def _open(wsb, gw, n):
    """Start a wsbench holding n idle sockets; (process, opened)."""
    p = subprocess.Popen([wsb, "idle", "-u", gw.url, "-t", gw.token,
                          "-c", str(n), "-i", "64", "-H", "300",
                          "-T", "120", "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    ready = None
    for line in p.stdout:
        if line.startswith("READY"):
            ready = line.split()
            break
    if ready is None:
        p.terminate()
        p.wait(20)
        pytest.fail("wsbench did not get ready")
    return p, int(ready[1])


def _loop(gw):
    c = gw.connect(scopes=["operator.read"])
    try:
        return c.call("status", {}, timeout=30)["gateway"]["wsLoop"]
    finally:
        c.close()


# Events one handshake may add when none of them coalesce (measured:
# 4 to 7 per connect in all, the halves within 1 of each other).
SLACK = 8

# No tick or health broadcast to the idle sockets while they open: each
# would add one event per open socket to the batch it falls in.
QUIET = {"CLAWGATE_TICK_INTERVAL_MS": "3600000",
         "CLAWGATE_HEALTH_INTERVAL_MS": "3600000"}


def _batches(launcher, n, env=None):
    """Open n idle sockets in two halves; the figures of each."""
    half = n // 2
    raise_nofile(2 * n + 1000)
    wsb = _wsbench()
    if not os.access(wsb, os.X_OK):
        pytest.fail("wsbench not built: %s (run make)" % wsb)
    gw = launcher.start(env=dict(QUIET, **(env or {})))
    pid = gw.proc.pid
    base = rss_kb(pid)
    w0 = _loop(gw)
    procs = []
    try:
        t0 = time.monotonic()
        p, a = _open(wsb, gw, half)
        procs.append(p)
        t1 = time.monotonic()
        w1 = _loop(gw)
        t1b = time.monotonic()
        p, b = _open(wsb, gw, n - half)
        procs.append(p)
        t2 = time.monotonic()
        w2 = _loop(gw)
        rss = rss_kb(pid)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
    # Each status request adds a connect of its own (and its events):
    # both batches include exactly one.
    return dict(pid=pid, opened=a + b, a=a, b=b,
                dt=(t1 - t0) + (t2 - t1b),
                per=(rss - base) * 1024.0 / max(a + b, 1),
                work1=(w1["events"] - w0["events"]) / max(a, 1),
                work2=(w2["events"] - w1["events"]) / max(b, 1),
                wake1=(w1["events"] - w0["events"]) /
                max(w1["wakeups"] - w0["wakeups"], 1),
                wake2=(w2["events"] - w1["events"]) /
                max(w2["wakeups"] - w1["wakeups"], 1), loop=w2)


def test_idle_authenticated_sockets(launcher):
    n = int(os.environ.get("CLAWGATE_IDLE_SOCKETS") or scale(500, 10000))
    r = _batches(launcher, n)
    opened, dt, per, w2 = r["opened"], r["dt"], r["per"], r["loop"]
    work1, work2, pid = r["work1"], r["work2"], r["pid"]
    figure("idle_auth_sockets_opened", "%d of %d" % (opened, n))
    figure("idle_auth_open_time", round(dt, 2), "s")
    figure("idle_auth_rss_per_socket", round(per / 1024.0, 1), "KB")
    figure("idle_auth_loop_backend", w2["backend"])
    figure("idle_auth_loop_events_per_connect",
           "%.1f then %.1f" % (work1, work2))
    assert opened == n, (r["a"], r["b"])
    # The service loop waits on epoll: its work is the ready events only.
    assert w2["backend"] == "epoll", w2
    # An idle ready connection holds no timer of ours (the handshake
    # timer is gone), so the timers do not grow with idle sockets.
    assert w2["timers"] < 16, w2
    # Linear: the second half, opened next to the first, costs the same
    # work per connect, give or take how the events of a handshake
    # coalesce (SLACK); a scan of every open fd per wake-up adds about a
    # quarter of the open sockets per connect (+40 at 500).
    assert work2 < work1 + SLACK, (work1, work2)
    with open("/proc/%d/maps" % pid) as f:
        asan = "libasan" in f.read()
    # ASan's shadow and redzones triple the figure: bound release builds
    # (3.5 KB at 10,000; a few hundred sockets carry the heap's growth
    # steps: 8 KB at 500; 12.5 KB before the reassembly buffer was freed
    # between messages and lws's receive chunk cut to 1 KiB)
    assert per < (256 if asan else 8 if n >= 5000 else 16) * 1024


def test_idle_work_figure_catches_poll_loop(launcher):
    """On lws's own poll(2) loop (CLAWGATE_WS_LOOP=poll, the loop before
    issue 10's fix) the work grows with the sockets already open: every
    wake-up scans every open fd, so the fds examined per wake-up in the
    second half (n/2 to n open) are about three times the first half's
    (0 to n/2), however the wake-ups batch on a loaded machine. (Per
    connect, the figure the check above uses, it grows too, but how much
    depends on how many connects a wake-up batches: timing.)"""
    n = scale(500, 2000)
    r = _batches(launcher, n, env={"CLAWGATE_WS_LOOP": "poll"})
    figure("idle_auth_poll_loop_events_per_connect",
           "%.1f then %.1f" % (r["work1"], r["work2"]))
    figure("idle_auth_poll_loop_fds_per_wakeup",
           "%.1f then %.1f" % (r["wake1"], r["wake2"]))
    assert r["opened"] == n
    assert r["loop"]["backend"] == "poll"
    assert r["wake2"] >= 1.5 * r["wake1"], (r["wake1"], r["wake2"])
