"""CLAWGATE_SCHED=batch runs the daemon's threads SCHED_BATCH (issue 11;
doc/operations.md, "Running"): a thread woken by another's hand-off does
not preempt it. Not the default (next to a busy process a woken thread
waits for the tick): by default the policy stays as started, and a policy
chosen outside the gateway (chrt, systemd's CPUSchedulingPolicy=) is
kept. Every thread is checked, not just the main one: they inherit it,
so it has to be set before the first one starts."""

import os
import shutil

import pytest

from harness import clawgate_only

pytestmark = clawgate_only("the scheduling policy is clawgate's")

SCHED_OTHER, SCHED_BATCH, SCHED_IDLE = 0, 3, 5


def policies(pid):
    """{thread name: set of policies} of every thread of pid
    (/proc/PID/task/TID/stat field 41; the name is read from comm, the
    fields after the last ')' of stat)."""
    out = {}
    base = "/proc/%d/task" % pid
    for tid in os.listdir(base):
        try:
            with open(os.path.join(base, tid, "comm")) as f:
                name = f.read().strip()
            with open(os.path.join(base, tid, "stat")) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue		# a short-lived thread that ended
        # rest[0] is field 3 (state): field 41 is rest[38]
        out.setdefault(name, set()).add(int(rest[38]))
    return out


def started(launcher, env=None, prefix=None):
    gw = launcher.start(env=env, prefix=prefix)
    pol = policies(gw.proc.pid)
    gw.stop()
    # the pipeline's threads are all there once /readyz answers
    for name in ("store", "store-ckpt", "agent", "ws", "MHD-single"):
        assert name in pol, pol
    return pol, gw.stderr()


def test_default_leaves_the_policy_as_started(launcher):
    pol, log = started(launcher)
    assert all(p == {SCHED_OTHER} for p in pol.values()), pol
    assert "threads scheduled: SCHED_OTHER\n" in log, log[-2000:]


def test_batch_reaches_every_thread(launcher):
    pol, log = started(launcher, env={"CLAWGATE_SCHED": "batch"})
    assert all(p == {SCHED_BATCH} for p in pol.values()), pol
    assert "threads scheduled: SCHED_BATCH (CLAWGATE_SCHED=batch)" in log


def test_an_unknown_value_is_named_and_ignored(launcher):
    pol, log = started(launcher, env={"CLAWGATE_SCHED": "fast"})
    assert all(p == {SCHED_OTHER} for p in pol.values()), pol
    assert 'CLAWGATE_SCHED is neither "batch" nor "normal"' in log


def test_a_policy_chosen_outside_is_kept(launcher):
    if not shutil.which("chrt"):
        pytest.skip("needs chrt (util-linux)")
    pol, log = started(launcher, env={"CLAWGATE_SCHED": "batch"},
                       prefix=["chrt", "--idle", "0"])
    assert all(p == {SCHED_IDLE} for p in pol.values()), pol
    assert "as started (a policy chosen outside the gateway)" in log
