"""Client integers are range-checked before arithmetic: `agent` with
timeout 1e18 (seconds, x1000 overflowed int64). Meaningful on the ASan
build, where UBSan reports the overflow (the launcher fails the test on
any sanitizer report at teardown)."""

from harness import sanitizer_report


def test_agent_timeout_huge(launcher):
    gw = launcher.start()
    c = gw.connect()
    for t in (10 ** 18, 2 ** 63 - 1, 9223372036854776):
        res = c.request("agent", {"message": "hi", "sessionKey": "main",
                                  "idempotencyKey": "k%d" % t,
                                  "timeout": t})
        # no model is configured: any answer, but an answer
        assert res["type"] == "res"
    assert c.call("health") is not None
    c.close()
    assert sanitizer_report(gw.stderr()) is None


def test_sessions_list_active_minutes_huge(launcher):
    """activeMinutes x 60000 overflowed int64 for huge values; a window
    reaching past the epoch now means no filter."""
    gw = launcher.start()
    c = gw.connect()
    base = c.call("sessions.list", {})
    for m in (2 ** 63 - 1, 10 ** 17, 153722867280913):
        got = c.call("sessions.list", {"activeMinutes": m})
        assert got["count"] == base["count"]
    c.close()
    assert sanitizer_report(gw.stderr()) is None
