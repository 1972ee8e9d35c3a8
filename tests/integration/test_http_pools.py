"""libmicrohttpd memory pools by the first head of a connection (issue
11: RSS per held stream, src/net/http.c). A held stream's pool stays
resident, so a POST whose first head is at most 1 KiB in at most 24 lines
(what API clients send) goes to a shard with 3 KiB pools, other heads of
up to 2 KiB to 8 KiB pools, bigger ones to 32 KiB pools. Each class's
shard starts on the first connection that needs it and says so in the
log; what goes through the small pools must still work: streamed and
non-streamed answers, big bodies, keep-alive follow-ups."""

import json
import socket
import time

from harness import clawgate_only
from oahelp import TOKEN, oa_config, upstream  # noqa: F401

pytestmark = clawgate_only("libmicrohttpd pool classes are clawgate's")


def _conn(gw):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=20)
    s.settimeout(20)
    return s


def _head(body_len, pad_lines=0, pad_bytes=0, method="POST",
          path="/v1/chat/completions"):
    """A request head; pad_lines extra headers carrying pad_bytes bytes
    of value in all."""
    h = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1",
         "Authorization: Bearer " + TOKEN]
    if method == "POST":
        h += ["Content-Type: application/json",
              "Content-Length: %d" % body_len]
    for i in range(pad_lines):
        n = pad_bytes // pad_lines + (1 if i < pad_bytes % pad_lines else 0)
        h.append("X-Pad-%02d: %s" % (i, "p" * n))
    return ("\r\n".join(h) + "\r\n\r\n").encode()


def _read_reply(s, buf=b""):
    """(status, body bytes, rest) of one reply: Content-Length, chunked,
    or (neither) up to the close."""
    deadline = time.monotonic() + 30
    while b"\r\n\r\n" not in buf:
        assert time.monotonic() < deadline, "no reply head"
        d = s.recv(65536)
        assert d, "closed before the reply head: %r" % buf
        buf += d
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, _, v in
            (ln.partition(":") for ln in lines[1:])}

    def need(n):
        nonlocal buf
        while len(buf) < n:
            assert time.monotonic() < deadline, "reply cut"
            d = s.recv(65536)
            assert d, "closed in the body"
            buf += d

    if "chunked" in hdrs.get("transfer-encoding", ""):
        body = b""
        while True:
            while b"\r\n" not in buf:
                need(len(buf) + 1)
            size, _, buf = buf.partition(b"\r\n")
            n = int(size.split(b";")[0], 16)
            need(n + 2)
            body += buf[:n]
            buf = buf[n + 2:]
            if n == 0:
                return status, body, buf
    if "content-length" not in hdrs:
        while time.monotonic() < deadline:
            d = s.recv(65536)
            if not d:
                return status, buf, b""
            buf += d
        assert False, "no close"
    n = int(hdrs["content-length"])
    need(n)
    return status, buf[:n], buf[n:]


def _chat(gw, s, text, stream=False, pad_lines=0, pad_bytes=0, buf=b""):
    body = json.dumps({"model": "openclaw", "stream": stream,
                       "messages": [{"role": "user",
                                     "content": text}]}).encode()
    s.sendall(_head(len(body), pad_lines, pad_bytes) + body)
    return _read_reply(s, buf)


def _pool_lines(gw, name):
    return [ln for ln in gw.output().splitlines()
            if "HTTP shard" in ln and "(%s pool" % name in ln]


def _wait_pool_line(gw, name):
    deadline = time.monotonic() + 10
    while not _pool_lines(gw, name) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _pool_lines(gw, name)


def _sse_text(body):
    out = ""
    for ev in body.decode().split("\n\n"):
        if ev.startswith("data: {"):
            ch = json.loads(ev[6:])
            for c in ch["choices"]:
                out += c["delta"].get("content") or ""
    return out


def test_api_post_goes_to_the_tiny_pool_and_works(launcher, upstream):  # noqa: F811
    """A GET and a POST with a 1.5 KiB head start no tiny shard; a POST
    with a head of ~1 KiB in 24 lines (an SDK's size) does, and on that
    keep-alive connection streamed and non-streamed answers, a 200 KB
    body and the same head again all work."""
    gw = launcher.start(config=oa_config(upstream))
    s = _conn(gw)
    s.sendall(_head(0, method="GET", path="/healthz"))
    assert _read_reply(s)[0] == 200
    s.close()
    s = _conn(gw)
    st, body, _ = _chat(gw, s, "[[reply:big head]]", pad_lines=10,
                        pad_bytes=1300)
    assert st == 200 and json.loads(body)["choices"][0]["message"][
        "content"] == "big head"
    s.close()
    assert not _pool_lines(gw, "tiny"), gw.output()

    # An SDK-like head: ~1,000 bytes in 24 lines.
    pad = dict(pad_lines=19, pad_bytes=1000 - len(_head(99, 19, 0)))
    assert len(_head(99, **pad)) <= 1024
    s = _conn(gw)
    st, body, rest = _chat(gw, s, "[[reply:one two three]]", stream=True,
                           **pad)
    assert st == 200, body
    assert body.endswith(b"data: [DONE]\n\n")
    assert _sse_text(body) == "one two three"
    assert _wait_pool_line(gw, "tiny"), gw.output()
    for i in range(3):
        st, body, rest = _chat(gw, s, "[[reply:again %d]]" % i, buf=rest,
                               **pad)
        assert st == 200, body
        assert json.loads(body)["choices"][0]["message"]["content"] == \
            "again %d" % i
    big = "[[reply:big body]]" + "x" * 200000
    st, body, rest = _chat(gw, s, big, stream=True, buf=rest, **pad)
    assert st == 200 and _sse_text(body) == "big body"
    assert upstream.snapshot()["requests"][-1]["messages"][-1][
        "content"] == big
    s.close()


def _refused_then_fresh(gw, s, head_len, rest):
    """A follow-up head of head_len bytes in 9 lines on s is answered
    431; a new connection is then served."""
    st, _, _ = _chat(gw, s, "[[reply:too big]]", pad_lines=4,
                     pad_bytes=head_len - len(_head(99, 4, 0)), buf=rest)
    assert st == 431
    s.close()
    s = _conn(gw)
    st, body, _ = _chat(gw, s, "[[reply:fresh]]", stream=True)
    assert st == 200 and _sse_text(body) == "fresh"
    s.close()


def test_tiny_pool_keepalive_follow_up_head(launcher, upstream):  # noqa: F811
    """A keep-alive connection that began with a tiny POST head takes a
    follow-up head of 2 KiB in 13 lines (twice the first's limit; ~2.1
    KiB fit a 3 KiB pool), and one of 1 KiB in 24 lines (the first's
    limit) with room to spare; one that cannot
    fit its pool is answered 431, and the gateway goes on serving."""
    gw = launcher.start(config=oa_config(upstream))
    s = _conn(gw)
    st, body, rest = _chat(gw, s, "[[reply:first]]")
    assert st == 200
    st, body, rest = _chat(gw, s, "[[reply:second]]", pad_lines=8,
                           pad_bytes=2048 - len(_head(99, 8, 0)), buf=rest)
    assert st == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == "second"
    assert _wait_pool_line(gw, "tiny"), gw.output()
    pad = dict(pad_lines=19, pad_bytes=1024 - len(_head(99, 19, 0)))
    for i in range(2):
        st, body, rest = _chat(gw, s, "[[reply:same %d]]" % i, buf=rest,
                               **pad)
        assert st == 200, body
    # ~2.7 KiB in 9 lines: past a 3 KiB pool's room (~2.4 KiB), within
    # a 4 KiB one's (~3.3 KiB): the tiny pool is 3 KiB.
    _refused_then_fresh(gw, s, 2700, rest)


def test_http10_stream_through_small_blocks(launcher, upstream):  # noqa: F811
    """An HTTP/1.0 client gets a stream without chunked framing, read
    through the response's callback block (128 bytes): every SSE event
    (each longer than a block) arrives whole and in order, and the
    connection closes at the end."""
    gw = launcher.start(config=oa_config(upstream))
    words = " ".join("word%03d" % i for i in range(60))
    body = json.dumps({"model": "openclaw", "stream": True,
                       "messages": [{"role": "user", "content":
                                     "[[reply:%s]]" % words}]}).encode()
    head = _head(len(body)).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    s = _conn(gw)
    s.sendall(head + body)
    st, body, _ = _read_reply(s)	# close-delimited: not chunked
    s.close()
    assert st == 200, body
    assert body.endswith(b"data: [DONE]\n\n")
    assert _sse_text(body) == words
