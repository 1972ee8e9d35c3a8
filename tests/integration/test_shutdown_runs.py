"""Shutdown with runs that cannot finish storing their end.

At SIGTERM every run is aborted; its end is committed by the store writer.
When the writer is held up (here another process holds SQLite's write
lock), the stop's bounded wait gives up and logs the runs still ending;
the shutdown then goes on, the ends commit once the lock is released, and
the daemon exits 0 with a clean sanitizer log. (The runtime itself is not
freed under runs still ending: tests/unit/test-agent.c,
test_free_with_runs_still_ending.) Nothing was answered, so nothing is
lost: at the next start no run is left "running"."""

import os
import signal
import sqlite3
import threading
import time

from harness import clawgate_only
from oahelp import chat, oa_config, post, upstream  # noqa: F401

pytestmark = clawgate_only("reads the daemon's log and its SQLite file")

STILL = "still ending at shutdown"


def wait_output(gw, pred, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not pred(gw.output()):
        assert gw.alive(), "daemon exited early:\n" + gw.stderr()[-3000:]
        assert time.monotonic() < deadline, \
            "no %s in the log:\n%s" % (what, gw.stderr()[-3000:])
        time.sleep(0.05)


def test_shutdown_with_the_store_held_up(launcher, upstream):
    upstream.reset()
    cfg = oa_config(upstream)
    gw = launcher.start(config=cfg)
    n = 6
    # Streams held before their first byte, and no WS client: nothing
    # else on the way out writes to the store before the runtime is
    # freed.
    threads = [threading.Thread(target=lambda i=i: post(
        gw, "/v1/chat/completions", chat("[[gate]] held %d" % i,
                                         user="held-%d" % i),
        stream=True, timeout=60).close(), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    upstream.wait(lambda s: s["inflight"] >= n, timeout=60)

    path = os.path.join(gw.state_dir, "state", "clawgate.sqlite")
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")       # the write lock
        gw.proc.send_signal(signal.SIGTERM)
        # Logged by the stop's bounded wait, the ends still queued.
        wait_output(gw, lambda o: STILL in o, repr(STILL))
    finally:
        db.execute("ROLLBACK")
        db.close()
        upstream.open_gate()
    assert gw.wait_exit() == 0, gw.stderr()[-3000:]
    gw.check_sanitizers()
    out = gw.output()
    assert "shutdown completed cleanly" in out, out[-3000:]
    # One line for the runs the stop cut, none per run (a backlog of
    # thousands would be thousands of lines).
    assert "stopping: %d run(s) in flight aborted" % n in out, out[-3000:]
    assert " aborted: " not in out and ") aborted" not in out, out[-3000:]
    for t in threads:
        t.join(30)

    # Nothing was answered, nothing is lost: at the next start the cut
    # runs are not left "running".
    gw2 = launcher.start(config=cfg, state_dir=gw.state_dir, port=gw.port)
    assert gw2.stop() == 0
    db = sqlite3.connect(path)
    try:
        running = db.execute("SELECT count(*) FROM idempotency WHERE "
                             "status = 'running'").fetchone()[0]
    finally:
        db.close()
    assert running == 0
