#!/usr/bin/python3
"""Scheduler timing accuracy (issue 12): N one-shot `at` jobs due at
distinct times (GAP ms apart, starting LEAD ms from now), each started by
the scheduler's own timer; the figure is due time → run start (the
`runAtMs` of the `started` cron event, i.e. the scheduler's clock when it
handed the run to the agent runtime), p50/p90/p99/max over N jobs. The
runs answer from the fake upstream (tests/integration/fakeupstream.py).

  CLAWGATE_BIN=build/normal/clawgate tests/bench/cron-timing.py
      [--jobs 100] [--gap 37] [--lead 3000] [--burst] [--json FILE]

--burst: all jobs due at the same instant (maxConcurrentRuns 64: the
rest wait in the queue), which measures queueing rather than the timer.
Not part of make check.
"""

import argparse
import datetime
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from chathelp import chat_config  # noqa: E402
from fakeupstream import FakeUpstream  # noqa: E402
from harness import Launcher  # noqa: E402


def iso(ms):
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def pct(v, p):
    v = sorted(v)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--gap", type=int, default=37)
    ap.add_argument("--lead", type=int, default=3000)
    ap.add_argument("--burst", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    up = FakeUpstream(api_key="sk-fake").start()
    tmp = tempfile.mkdtemp(prefix="cron-bench-")
    lch = Launcher(tmp)
    try:
        gw = lch.start(config=chat_config(up, {"cron": {
            "maxConcurrentRuns": 64}}))
        ws = gw.connect()
        base = int(time.time() * 1000) + a.lead
        due = {}
        t0 = time.monotonic()
        for i in range(a.jobs):
            at = base if a.burst else base + i * a.gap
            job = ws.call("cron.add", {
                "name": "bench %d" % i,
                "schedule": {"kind": "at", "at": iso(at)},
                "sessionTarget": "isolated", "wakeMode": "now",
                "payload": {"kind": "agentTurn", "message": "tick %d" % i},
                "delivery": {"mode": "none"}})
            due[job["id"]] = job["state"]["nextRunAtMs"]
        add_ms = (time.monotonic() - t0) * 1000
        if int(time.time() * 1000) > base:
            print("warning: adding took %.0f ms, past the first due time; "
                  "raise --lead" % add_ms, file=sys.stderr)
        lag = {}
        deadline = time.monotonic() + a.lead / 1000.0 + 60
        while len(lag) < len(due):
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit("only %d of %d jobs started"
                                 % (len(lag), len(due)))
            ev = ws.wait_event("cron", timeout=left,
                               pred=lambda f: f["payload"].get("action")
                               == "started")
            p = ev["payload"]
            if p["jobId"] in due and p["jobId"] not in lag:
                lag[p["jobId"]] = p["runAtMs"] - due[p["jobId"]]
        v = list(lag.values())
        res = {"jobs": len(v), "gap_ms": 0 if a.burst else a.gap,
               "burst": a.burst, "add_ms_total": round(add_ms),
               "lag_ms": {"min": min(v), "p50": pct(v, 50),
                          "p90": pct(v, 90), "p99": pct(v, 99),
                          "max": max(v)},
               "early": sum(1 for x in v if x < 0)}
        print("cron timing: %d one-shot jobs%s: due -> run start "
              "p50 %d ms, p90 %d ms, p99 %d ms, max %d ms (min %d, "
              "early %d)" % (len(v), " (burst)" if a.burst else
                             ", %d ms apart" % a.gap,
                             res["lag_ms"]["p50"], res["lag_ms"]["p90"],
                             res["lag_ms"]["p99"], res["lag_ms"]["max"],
                             res["lag_ms"]["min"], res["early"]))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=2)
    finally:
        lch.cleanup() if hasattr(lch, "cleanup") else None
        up.stop()


if __name__ == "__main__":
    main()
