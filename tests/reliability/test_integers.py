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
