"""pytest plugin: report every test as a TAP line for automake's tap-driver.

TAP goes to the file descriptor in CLAWGATE_TAP_FD (run.sh points it at the
original stdout; pytest's own output goes to stderr, i.e. the test log). One
line per test after its teardown, so a failing teardown (e.g. a sanitizer
report found when the shared daemon stops) fails the test it ran after.
Collection errors become `not ok` lines too. The plan comes last.
"""

import os

import pytest

_state = {"n": 0, "out": None, "outcomes": {}}


def _emit(line):
    out = _state["out"]
    if out is None:
        fd = int(os.environ.get("CLAWGATE_TAP_FD", "1"))
        out = _state["out"] = os.fdopen(os.dup(fd), "w", buffering=1)
    out.write(line + "\n")
    out.flush()


def _clean(text):
    return " ".join(str(text).split()).replace("#", "\\#")


def pytest_collectreport(report):
    if report.failed:
        _state["n"] += 1
        _emit("not ok %d - collection error: %s" % (
            _state["n"], _clean(report.nodeid or "session")))


def pytest_runtest_logreport(report):
    cur = _state["outcomes"].setdefault(report.nodeid, {
        "failed": False, "skipped": None, "xfail": False, "where": []})
    if report.failed:
        cur["failed"] = True
        cur["where"].append(report.when)
    elif report.skipped:
        if hasattr(report, "wasxfail"):
            cur["xfail"] = True
        else:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) \
                else str(report.longrepr)
            cur["skipped"] = reason.replace("Skipped: ", "")


def pytest_runtest_logfinish(nodeid, location):
    cur = _state["outcomes"].pop(nodeid, None)
    if cur is None:
        return
    _state["n"] += 1
    n, name = _state["n"], _clean(nodeid)
    if cur["failed"]:
        where = ",".join(w for w in cur["where"] if w != "call")
        _emit("not ok %d - %s%s" % (n, name,
                                     " (%s failed)" % where if where else ""))
    elif cur["xfail"]:
        _emit("not ok %d - %s # TODO expected failure" % (n, name))
    elif cur["skipped"] is not None:
        _emit("ok %d - %s # SKIP %s" % (n, name, _clean(cur["skipped"])))
    else:
        _emit("ok %d - %s" % (n, name))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    n = _state["n"]
    if n == 0:
        _emit("1..0 # SKIP no tests collected (pytest exit %s)"
              % int(exitstatus))
    else:
        _emit("1..%d" % n)
    marker = os.environ.get("CLAWGATE_TAP_DONE")
    if marker:
        open(marker, "w").close()
