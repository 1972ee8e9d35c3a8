"""The listener is the front door (reliability findings D1, D4-D7).

Each test is an attack from reference/reliability-findings.md: it failed on
56d243e and passes once the listener and http enforce their budgets."""

import select
import socket
import threading
import time

import pytest

from harness import Launcher

from relhelp import (closed_within, figure, healthz, nfds,
                     raise_nofile, read_reply, scale, status_of, tcp)

FLOOD_SRC = "127.0.0.2"


def _open_silent(port, n, src):
    socks, failed = [], 0
    for _ in range(n):
        try:
            socks.append(tcp(port, src=src, timeout=5))
        except OSError:
            failed += 1
    return socks, failed


def _count_refused(socks, wait=3.0, target=None):
    """How many of socks the daemon answered 503 or closed, waiting at
    most `wait` seconds (less once `target` refusals were seen)."""
    pending = {s.fileno(): s for s in socks}
    poller = select.poll()	# select() stops at fd 1024
    for fd in pending:
        poller.register(fd, select.POLLIN | select.POLLERR |
                        select.POLLHUP)
    refused = 0
    deadline = time.monotonic() + wait
    while pending and time.monotonic() < deadline and \
            (target is None or refused < target):
        left = max(0.01, deadline - time.monotonic())
        for fd, _ in poller.poll(int(min(left, 1.0) * 1000)):
            if fd not in pending:
                continue
            poller.unregister(fd)
            s = pending.pop(fd)
            try:
                d = s.recv(4096)
                if not d or d.startswith(b"HTTP/1.1 503"):
                    refused += 1
            except OSError:
                refused += 1
    return refused


def test_preauth_flood_one_address_others_connect(launcher):
    """Silent sockets from 127.0.0.2: past the per-address budget the
    newest are refused (503); 127.0.0.1 still gets /healthz and a WS
    hello. Full: 6,000 sockets (more than the old 4,096 global cap). The
    bound checked does not depend on timing: whatever the grace period
    let in, one address never holds more than 4 x 32 sockets."""
    n = scale(300, 6000)
    raise_nofile(n + 2000)
    gw = launcher.start()
    socks, failed = _open_silent(gw.port, n, FLOOD_SRC)
    try:
        refused = _count_refused(socks, wait=20.0,
                                 target=n - failed - 32 * 4)
        held = n - failed - refused
        figure("preauth_sockets_held_per_address", held, "sockets")
        assert held <= 32 * 4, "one address holds %d sockets" % held
        st, dt = healthz(gw.port)
        assert st == 200, "a stranger was refused during the flood"
        c = gw.connect(scopes=["operator.read"])
        assert c.call("health") is not None
        c.close()
    finally:
        for s in socks:
            s.close()


def test_preauth_total_budget_evicts_heaviest(launcher):
    """With a total budget of 64, sockets from four flood addresses never
    lock out a fifth: the oldest of the heaviest address is closed."""
    gw = launcher.start(env={"CLAWGATE_PREAUTH_MAX": "64",
                             "CLAWGATE_PREAUTH_PER_ADDR": "30"})
    socks = []
    try:
        for i in range(4):
            s, _ = _open_silent(gw.port, 30, "127.0.0.%d" % (10 + i))
            socks += s
        st, _ = healthz(gw.port, src="127.0.0.50")
        assert st == 200
        evicted = _count_refused(socks, wait=20.0,
                                 target=len(socks) - 64)
        figure("preauth_total_budget", 64, "sockets")
        assert evicted >= len(socks) - 64
    finally:
        for s in socks:
            s.close()


def test_slowloris_head_has_a_deadline(launcher):
    """A POST head trickled byte by byte is closed at the head deadline
    (it used to go to libmicrohttpd at once and stay forever)."""
    gw = launcher.start(env={"CLAWGATE_HEAD_TIMEOUT_MS": "1500"})
    s = tcp(gw.port)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    closed = False
    try:
        for _ in range(40):
            s.sendall(b"X")
            if closed_within(s, 0.25):
                closed = True
                break
    except OSError:
        closed = True
    dt = time.monotonic() - t0
    s.close()
    figure("slowloris_head_closed_after", round(dt, 2), "s")
    assert closed, "trickled head still open after %.1fs" % dt


def test_slowloris_body_is_cut(launcher):
    """A body trickled below the minimum rate is cut once the grace
    period is over (it used to be held for as long as bytes came)."""
    gw = launcher.start()
    s = tcp(gw.port)
    s.sendall(b"POST /no/such/route HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 60000\r\n\r\n")
    t0 = time.monotonic()
    closed = False
    try:
        while time.monotonic() - t0 < 25:
            s.sendall(b"x")
            if closed_within(s, 0.5):
                closed = True
                break
    except OSError:
        closed = True
    dt = time.monotonic() - t0
    s.close()
    figure("slowloris_body_closed_after", round(dt, 1), "s")
    assert closed, "trickled body still open after %.0fs" % dt


def _burst(port, n, head, results, idx):
    for i in idx:
        try:
            s = tcp(port, timeout=5)
            s.sendall(head)
            results[i] = s
        except OSError:
            results[i] = None


# (total cap, shard size): one libmicrohttpd daemon, and three shards
BURSTS = [(scale(64, 1024), None), (scale(96, 3072), scale(32, 1024))]


@pytest.mark.parametrize("cap,shard", BURSTS, ids=["one", "shards"])
def test_http_burst_past_the_cap(launcher, cap, shard):
    """A fast burst of complete HTTP heads past the hand-off cap: the
    surplus is answered 503 + close, /healthz answers during and after,
    fds come back and SIGTERM ends the daemon (finding D1: libmicrohttpd
    0.9.75 deadlocked on itself at its own limit). With shards, each
    libmicrohttpd daemon is filled to its own cap and no further."""
    n = cap + scale(236, 1276)
    raise_nofile(n + 2000)
    env = {"CLAWGATE_HTTP_MAX_CONNS": str(cap)}
    if shard:
        env["CLAWGATE_HTTP_SHARD_CONNS"] = str(shard)
    gw = launcher.start(env=env)
    pid = gw.proc.pid
    base_fds = nfds(pid)
    # a complete head whose body never comes: libmicrohttpd holds it
    head = (b"POST /no/such/route HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 100\r\n\r\n")
    results = [None] * n
    threads = [threading.Thread(target=_burst, args=(
        gw.port, n, head, results, range(k, n, 8))) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    socks = [s for s in results if s is not None]
    try:
        during_fds = nfds(pid)
        st_during, dt_during = healthz(gw.port)
        refused = _count_refused(socks, wait=30.0,
                                 target=len(socks) - cap - 8)
        figure("burst_sockets", len(socks), "sockets")
        figure("burst_refused_503", refused, "sockets")
        figure("burst_fds_during", during_fds, "fds")
        figure("burst_healthz_during", "%s in %.3fs" % (st_during,
                                                       dt_during))
        assert st_during in (200, 503), "no answer during the burst"
        assert refused >= len(socks) - cap - 8
    finally:
        for s in socks:
            s.close()
    # after: everything answers again, fds back near the baseline
    deadline = time.monotonic() + 20
    while True:
        st, dt = healthz(gw.port)
        after_fds = nfds(pid)
        if (st == 200 and after_fds <= base_fds + 8) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.2)
    figure("burst_healthz_after", "%s in %.3fs" % (st, dt))
    figure("burst_fds_after", "%d (baseline %d)" % (after_fds, base_fds),
           "fds")
    assert st == 200
    assert after_fds <= base_fds + 8
    t0 = time.monotonic()
    assert gw.stop() == 0
    figure("burst_sigterm_exit", round(time.monotonic() - t0, 2), "s")


@pytest.fixture(scope="module")
def shared_gw(tmp_root):
    lch = Launcher(tmp_root)
    gw = lch.start()
    yield gw
    lch.cleanup()


FRAMING = [
    # (name, request bytes, expected status, must close)
    ("bare_lf_get", b"GET /healthz HTTP/1.1\nHost: x\n\n", 400),
    ("cl_and_te", b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4"
     b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /readyz HTTP/1.1"
     b"\r\nHost: x\r\n\r\n", 400),
    ("two_lengths", b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length:"
     b" 1\r\nContent-Length: 2\r\n\r\nab", 400),
    ("no_host_11", b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    ("two_hosts", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
     400),
    ("obs_fold", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n b\r\n"
     b"\r\n", 400),
    ("nul_in_value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n"
     b"\r\n", 400),
    ("space_before_colon", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
     400),
    ("http_9", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 505),
    ("head_20k", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " +
     b"a" * 20000 + b"\r\n\r\n", 431),
    ("fields_200", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
     b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n", 431),
]


@pytest.mark.parametrize("name,req,want", FRAMING,
                         ids=[f[0] for f in FRAMING])
def test_framing_attack_refused(shared_gw, name, req, want):
    gw = shared_gw
    s = tcp(gw.port)
    try:
        s.sendall(req)
    except OSError:
        pass
    rep = read_reply(s, 15)
    st = status_of(rep)
    assert st == want, "%s: got %r" % (name, (rep or b"")[:200])
    # nothing after the refusal is executed: the connection is closed
    assert closed_within(s, 3)
    assert rep.count(b"HTTP/1.1 ") == 1
    s.close()


def test_keepalive_second_request_framing(launcher):
    """The listener checks the first head; libmicrohttpd's side checks
    every later request of a keep-alive connection."""
    gw = launcher.start()
    s = tcp(gw.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(read_reply(s)) == 200
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert status_of(read_reply(s)) == 400
    assert closed_within(s, 3)
    s.close()


def test_no_keepalive_past_half_the_cap(launcher):
    """Past half the HTTP cap every answer closes its connection, so a
    keep-alive connection cannot be held with a trickled second head."""
    gw = launcher.start(env={"CLAWGATE_HTTP_MAX_CONNS": "8"})
    held = []
    try:
        for _ in range(5):
            s = tcp(gw.port)
            s.sendall(b"POST /no/such/route HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100\r\n\r\n")
            held.append(s)
        # the 5 reach libmicrohttpd in their own time: ask until they did
        deadline = time.monotonic() + 20
        while True:
            s = tcp(gw.port)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            rep = read_reply(s)
            if b"connection: close" in rep.lower() or \
                    time.monotonic() > deadline:
                break
            s.close()
        assert status_of(rep) == 200
        assert b"connection: close" in rep.lower()
        assert closed_within(s, 3)
        s.close()
    finally:
        for h in held:
            h.close()
    # below half of it, keep-alive is back
    deadline = time.monotonic() + 10
    while True:
        s = tcp(gw.port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        rep = read_reply(s)
        s.close()
        if b"connection: close" not in rep.lower() or \
                time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert b"connection: close" not in rep.lower()


def test_big_ws_upgrade_is_not_404(launcher):
    """A 12 KiB WS upgrade head (big cookies) reaches lws (finding D6)."""
    gw = launcher.start()
    c = gw.ws(headers={"Cookie": "c=" + "x" * 12 * 1024})
    assert c.challenge["event"] == "connect.challenge"
    c.close()


def test_preauth_flood_ipv6(launcher):
    """The same per-address budget on ::1 (the default loopback bind
    listens on 127.0.0.1 and ::1)."""
    n = scale(200, 1000)
    raise_nofile(n + 2000)
    gw = launcher.start()
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET6)
            s.settimeout(5)
            try:
                s.connect(("::1", gw.port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        assert socks, "no ::1 listener"
        refused = _count_refused(socks, 20, target=len(socks) - 32 * 4)
        figure("preauth_sockets_held_ipv6", len(socks) - refused,
               "sockets")
        assert len(socks) - refused <= 32 * 4
        st, _ = healthz(gw.port)
        assert st == 200
    finally:
        for s in socks:
            s.close()
