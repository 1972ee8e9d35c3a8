"""Helpers of the reliability harness (tests/reliability/README.md).

Every test attacks a daemon it started itself, on 127.0.0.1 / 127.0.0.2 /
::1 only, with a bounded number of sockets and a bounded time.
CLAWGATE_RELIABILITY=full (make reliability) uses the issue's sizes;
the default (short, inside make check) uses small ones.
"""

import json
import os
import resource
import socket
import time

FULL = os.environ.get("CLAWGATE_RELIABILITY") == "full"
REPORT = os.environ.get("CLAWGATE_RELIABILITY_REPORT")


def scale(short, full):
    return full if FULL else short


def raise_nofile(want):
    """Raise RLIMIT_NOFILE of this process (and its children) to want."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, want), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def figure(name, value, unit=""):
    """Record a measured figure (printed; appended to the report file)."""
    line = {"figure": name, "value": value, "unit": unit,
            "mode": "full" if FULL else "short"}
    print("FIGURE %s = %s %s" % (name, value, unit))
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps(line) + "\n")


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])
    return 0


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def tcp(port, src="127.0.0.1", host="127.0.0.1", timeout=5.0):
    """A connected socket from source address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
    if src != "127.0.0.1":
        s.bind((src, 0))
    s.connect((host, port))
    return s


def read_reply(s, timeout=5.0):
    """Read until the peer closes or the head of one reply is in; returns
    the bytes ('' when closed at once), or None on timeout."""
    s.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            d = s.recv(65536)
            if not d:
                return buf
            buf += d
            if b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                cl = 0
                for ln in head.split(b"\r\n")[1:]:
                    k, _, v = ln.partition(b":")
                    if k.strip().lower() == b"content-length":
                        cl = int(v.strip())
                if len(rest) >= cl:
                    return buf
    except socket.timeout:
        return None if not buf else buf
    except (ConnectionResetError, BrokenPipeError):
        return buf
    return None if not buf else buf


def status_of(reply):
    if not reply or not reply.startswith(b"HTTP/1."):
        return None
    return int(reply.split(b" ", 2)[1])


def closed_within(s, seconds):
    """True when the peer closes s (EOF or RST) within seconds."""
    s.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            d = s.recv(65536)
            if not d:
                return True
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def healthz(port, timeout=5.0, src="127.0.0.1"):
    """(status, seconds) of one GET /healthz on a new connection."""
    t0 = time.monotonic()
    try:
        s = tcp(port, src=src, timeout=timeout)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        st = status_of(read_reply(s, timeout))
        s.close()
    except OSError:
        st = None
    return st, time.monotonic() - t0
