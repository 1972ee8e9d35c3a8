"""A small synchronous WebSocket client over a raw socket (RFC 6455).

Debian 12 ships python3-websockets 10.4, which has no sync client; a raw
client also lets the tests send what a library would refuse (oversized or
malformed frames) and read the exact close code and reason. Every JSON frame
received goes through an optional validator callback (schema checks).
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time
import uuid

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

# Upper bound on any single read from the server (a reply bigger than this
# is a bug in the server or the test, not something to buffer).
MAX_MESSAGE = 64 * 1024 * 1024


class WsTimeout(AssertionError):
    """No frame arrived within the timeout."""


class WsClosed(AssertionError):
    """The connection was closed while a frame was expected."""

    def __init__(self, code, reason, msg=None):
        self.code = code
        self.reason = reason
        super().__init__(msg or "connection closed (%s %r)" % (code, reason))


class WsClient:
    """One WebSocket connection. Use recv_json()/request()/expect_close()."""

    def __init__(self, host, port, path="/", headers=None, timeout=5.0,
                 validator=None):
        self.host = host
        self.port = port
        self.validator = validator
        self.buf = b""
        self.closed = None          # (code, reason) once a close arrived
        self.eof = False
        self.events = []            # every event frame received
        self.frames = []            # every JSON frame received
        self.pending = {}           # request id -> method
        self.default_timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET %s HTTP/1.1" % path,
            "Host: %s:%d" % (host, port),
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: " + key,
            "Sec-WebSocket-Version: 13",
        ]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline, "HTTP upgrade response")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        head = head.decode("latin-1").split("\r\n")
        self.status_line = head[0]
        self.response_headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            self.response_headers[k.strip().lower()] = v.strip()
        parts = self.status_line.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            raise AssertionError("WebSocket upgrade refused: %r" %
                                 self.status_line)
        want = base64.b64encode(hashlib.sha1(
            (key + GUID).encode()).digest()).decode()
        got = self.response_headers.get("sec-websocket-accept")
        if got != want:
            raise AssertionError("bad Sec-WebSocket-Accept %r" % got)

    # ---- raw I/O --------------------------------------------------------

    def _fill(self, deadline, what):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WsTimeout("timed out waiting for %s" % what)
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise WsTimeout("timed out waiting for %s" % what) from None
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise WsClosed(1006, "", "connection dropped (TCP EOF, no close "
                           "frame) while waiting for %s" % what)
        self.buf += data

    def _need(self, n, deadline, what):
        while len(self.buf) < n:
            self._fill(deadline, what)

    def _read_frame(self, deadline, what):
        self._need(2, deadline, what)
        b0, b1 = self.buf[0], self.buf[1]
        fin, opcode = b0 & 0x80, b0 & 0x0F
        masked, ln = b1 & 0x80, b1 & 0x7F
        off = 2
        if ln == 126:
            self._need(4, deadline, what)
            ln = struct.unpack(">H", self.buf[2:4])[0]
            off = 4
        elif ln == 127:
            self._need(10, deadline, what)
            ln = struct.unpack(">Q", self.buf[2:10])[0]
            off = 10
        if ln > MAX_MESSAGE:
            raise AssertionError("server frame of %d bytes" % ln)
        if masked:
            raise AssertionError("server sent a masked frame (RFC 6455 5.1)")
        self._need(off + ln, deadline, what)
        payload = self.buf[off:off + ln]
        self.buf = self.buf[off + ln:]
        return bool(fin), opcode, payload

    def send_frame(self, opcode, payload, fin=True):
        if isinstance(payload, str):
            payload = payload.encode()
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload)) \
            if n < 4096 else _xor_mask(payload, mask)
        self.sock.settimeout(self.default_timeout)
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def recv_message(self, timeout=None):
        """Next data message as str/bytes; handles ping, close, fragments."""
        if self.closed:
            raise WsClosed(*self.closed)
        deadline = time.monotonic() + (timeout or self.default_timeout)
        parts, first_op = [], None
        while True:
            fin, op, payload = self._read_frame(deadline, "a frame")
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code, reason = 1005, ""
                if len(payload) >= 2:
                    code = struct.unpack(">H", payload[:2])[0]
                    reason = payload[2:].decode("utf-8", "replace")
                self.closed = (code, reason)
                try:
                    self.send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                raise WsClosed(code, reason)
            if op in (OP_TEXT, OP_BINARY):
                first_op = op
                parts = [payload]
            elif op == OP_CONT:
                parts.append(payload)
            else:
                raise AssertionError("unknown opcode %d" % op)
            if fin:
                data = b"".join(parts)
                if first_op == OP_TEXT:
                    return data.decode("utf-8")
                return data

    # ---- JSON frames ----------------------------------------------------

    def recv_json(self, timeout=None):
        """Next JSON frame (validated); raises WsClosed/WsTimeout."""
        msg = self.recv_message(timeout)
        try:
            frame = json.loads(msg)
        except ValueError:
            raise AssertionError("server sent non-JSON text: %r" % msg[:200])
        self.frames.append(frame)
        if self.validator:
            self.validator(frame, self.pending)
        if isinstance(frame, dict) and frame.get("type") == "event":
            self.events.append(frame)
        return frame

    recv_frame = recv_json

    def send_req(self, method, params=None, req_id=None, omit_params=False):
        req_id = req_id or str(uuid.uuid4())
        frame = {"type": "req", "id": req_id, "method": method}
        if not omit_params:
            frame["params"] = {} if params is None else params
        self.pending[req_id] = method
        self.send_json(frame)
        return req_id

    def wait_res(self, req_id, timeout=None):
        """Read frames until the res for req_id; events are collected."""
        deadline = time.monotonic() + (timeout or self.default_timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WsTimeout("no res for id %s" % req_id)
            f = self.recv_json(left)
            if f.get("type") == "res" and f.get("id") == req_id:
                return f

    def request(self, method, params=None, timeout=None, **kw):
        """Send a req and return its res frame (events go to .events)."""
        return self.wait_res(self.send_req(method, params, **kw), timeout)

    def call(self, method, params=None, timeout=None):
        """request() that asserts ok and returns the payload."""
        res = self.request(method, params, timeout)
        assert res.get("ok") is True, "%s failed: %r" % (method,
                                                         res.get("error"))
        return res.get("payload")

    def wait_event(self, name, timeout=None, pred=None):
        """Return the first (already received or next) event `name`."""
        for ev in self.events:
            if ev.get("event") == name and (pred is None or pred(ev)):
                self.events.remove(ev)
                return ev
        deadline = time.monotonic() + (timeout or self.default_timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WsTimeout("no %s event" % name)
            f = self.recv_json(left)
            if f.get("type") == "event" and f.get("event") == name and \
                    (pred is None or pred(f)):
                self.events.remove(f)
                return f

    def expect_close(self, timeout=None):
        """Read until the server closes; returns (code, reason).

        Frames received meanwhile are kept in .frames. A TCP close without
        a close frame returns (1006, "").
        """
        if self.closed:
            return self.closed
        deadline = time.monotonic() + (timeout or self.default_timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WsTimeout("server did not close the connection")
            try:
                self.recv_json(left)
            except WsClosed as e:
                return (e.code, e.reason)

    def close(self, code=1000):
        try:
            if not self.closed and not self.eof:
                self.send_frame(OP_CLOSE, struct.pack(">H", code))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def _xor_mask(data, mask):
    n = len(data)
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(m, "big")).to_bytes(
        n, "big")
