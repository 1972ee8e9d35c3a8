"""Idle authenticated sockets: RSS per socket and the time to open them
(tests/bench/wsbench idle, 64 handshakes in flight). 500 (short) or
10,000 (full) connections from 127.0.0.1: the per-address pre-auth budget
must not refuse a client that opens many connections at once."""

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


def test_idle_authenticated_sockets(launcher):
    n = scale(500, 10000)
    raise_nofile(2 * n + 1000)
    wsb = _wsbench()
    if not os.access(wsb, os.X_OK):
        pytest.fail("wsbench not built: %s (run make)" % wsb)
    gw = launcher.start()
    pid = gw.proc.pid
    base = rss_kb(pid)
    p = subprocess.Popen([wsb, "idle", "-u", gw.url, "-t", gw.token,
                          "-c", str(n), "-i", "64", "-H", "120",
                          "-T", "120", "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    ready = None
    t0 = time.monotonic()
    try:
        for line in p.stdout:
            if line.startswith("READY"):
                ready = line.split()
                break
        dt = time.monotonic() - t0
        assert ready is not None, "wsbench did not get ready"
        opened = int(ready[1])
        rss = rss_kb(pid)
    finally:
        p.terminate()
        p.wait(20)
    per = (rss - base) * 1024.0 / max(opened, 1)
    figure("idle_auth_sockets_opened", "%d of %d" % (opened, n))
    figure("idle_auth_open_time", round(dt, 2), "s")
    figure("idle_auth_rss_per_socket", round(per / 1024.0, 1), "KB")
    assert opened == n, ready
    with open("/proc/%d/maps" % pid) as f:
        asan = "libasan" in f.read()
    # ASan's shadow and redzones triple the figure: bound release builds
    assert per < (256 if asan else 64) * 1024
