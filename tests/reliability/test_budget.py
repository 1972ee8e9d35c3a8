"""A global budget for queued outbound WS bytes: clients that send
requests and never read are closed 1008 "slow consumer", the oldest
backlog first, while everyone else keeps being served (before issue 10
each client could queue 50 MB with no global bound)."""

import socket
import time

from relhelp import figure


def _flood_unread(c, n):
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for i in range(n):
        try:
            c.send_req("config.schema", {}, req_id="f%d" % i)
        except OSError:
            return i
    return n


def test_slow_consumer_closed_by_global_budget(launcher):
    gw = launcher.start(env={"CLAWGATE_WS_TOTAL_BUDGET": str(1 << 20)})
    ok = gw.connect(scopes=["operator.read"])
    slow = gw.connect()
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # config.schema answers are ~33 KB: 600 of them are far more than
    # the socket buffers and the 1 MB budget
    sent = _flood_unread(slow, 600)
    # everyone else is still served (after the lws thread went through
    # the flood: generous bound for sanitizer builds on a loaded machine)
    assert ok.call("health", timeout=60) is not None
    # the slow client reads nothing until the daemon closed it (reading
    # would drain its backlog); bounded wait on the daemon log
    deadline = time.monotonic() + 60
    while "queued in all" not in gw.stderr() and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert "queued in all" in gw.stderr(), "slow consumer never closed"
    # the daemon drops the connection: drain the raw bytes to EOF (not
    # frame by frame: thousands of queued answers sit in the socket)
    closed, deadline = False, time.monotonic() + 60
    slow.sock.settimeout(1)
    while not closed and time.monotonic() < deadline:
        try:
            closed = slow.sock.recv(1 << 20) == b""
        except socket.timeout:
            pass
        except OSError:
            closed = True
    figure("ws_budget_slow_consumer_closed", "after %d requests" % sent)
    assert closed
    assert "queued in all" in gw.stderr()
    assert ok.call("health", timeout=60) is not None
    ok.close()
