#!/usr/bin/python3
"""Pairing figures (issue 3): signed connects per second (N concurrent
clients, new socket -> hello-ok with Ed25519 verification) and durable
approvals per second (each visible to `sqlite3 -readonly` once answered).

  CLAWGATE_BIN=build/clawgate tests/bench/pairing.py [--duration S]
      [--conc N] [--approvals K]

Needs python3-nacl. Not part of make check.
"""

import argparse
import base64
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import nacl.signing


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Ws:
    def __init__(self, port, headers=""):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13"
                        "\r\n%s\r\n" % (port, key, headers)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        self.buf = self.buf.split(b"\r\n\r\n", 1)[1]

    def _more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def recv(self):
        while True:
            while len(self.buf) < 2:
                self._more()
            op, n = self.buf[0] & 15, self.buf[1] & 127
            h = 2
            if n == 126:
                while len(self.buf) < 4:
                    self._more()
                n, h = int.from_bytes(self.buf[2:4], "big"), 4
            elif n == 127:
                while len(self.buf) < 10:
                    self._more()
                n, h = int.from_bytes(self.buf[2:10], "big"), 10
            while len(self.buf) < h + n:
                self._more()
            p, self.buf = self.buf[h:h + n], self.buf[h + n:]
            if op == 8:
                raise EOFError(p)
            if op == 1:
                return json.loads(p)

    def send(self, obj):
        p = json.dumps(obj).encode()
        m = os.urandom(4)
        n = len(p)
        hdr = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                               bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        self.s.sendall(hdr + m + bytes(b ^ m[i % 4] for i, b in
                                       enumerate(p)))

    def req(self, method, params, rid="1"):
        self.send({"type": "req", "id": rid, "method": method,
                   "params": params})
        while True:
            f = self.recv()
            if f.get("type") == "res" and f.get("id") == rid:
                return f

    def close(self):
        self.s.close()


def params(sk, nonce, scopes, token="T"):
    pub = bytes(sk.verify_key)
    did = hashlib.sha256(pub).hexdigest()
    now = int(time.time() * 1000)
    msg = "|".join(["v3", did, "cli", "cli", "operator", ",".join(scopes),
                    str(now), token, nonce, "linux", ""])
    return {"minProtocol": 4, "maxProtocol": 4,
            "client": {"id": "cli", "version": "bench", "platform": "linux",
                       "mode": "cli"},
            "role": "operator", "scopes": scopes, "auth": {"token": token},
            "device": {"id": did, "publicKey": b64u(pub),
                       "signature": b64u(sk.sign(msg.encode()).signature),
                       "signedAt": now, "nonce": nonce}}


def signed_connect(port, sk, headers=""):
    w = Ws(port, headers)
    ch = w.recv()
    res = w.req("connect", params(sk, ch["payload"]["nonce"],
                                  ["operator.read"]))
    return w, res


def worker(port, seed, duration, q):
    sk = nacl.signing.SigningKey(seed)
    n = errs = 0
    end = time.monotonic() + duration
    while time.monotonic() < end:
        w, res = signed_connect(port, sk)
        if res.get("ok"):
            n += 1
        else:
            errs += 1
        w.close()
    q.put((n, errs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--conc", type=int, default=4)
    ap.add_argument("--approvals", type=int, default=200)
    a = ap.parse_args()
    binp = os.environ.get("CLAWGATE_BIN", "./clawgate")
    st = tempfile.mkdtemp(prefix="clawgate-pairbench-")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = dict(os.environ, OPENCLAW_STATE_DIR=st, HOME=st,
               OPENCLAW_CONFIG_PATH=os.path.join(st, "openclaw.json"))
    p = subprocess.Popen([binp, "gateway", "run", "--port", str(port),
                          "--auth", "token", "--token", "T",
                          "--allow-unconfigured"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                Ws(port).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("gateway did not start")
                time.sleep(0.05)
        seeds = [os.urandom(32) for _ in range(a.conc)]
        for sd in seeds:   # pair each (silently: local) first
            w, res = signed_connect(port, nacl.signing.SigningKey(sd))
            assert res["ok"], res
            w.close()
        q = mp.Queue()
        ps = [mp.Process(target=worker, args=(port, sd, a.duration, q))
              for sd in seeds]
        t0 = time.monotonic()
        for x in ps:
            x.start()
        tot = [q.get() for _ in ps]
        for x in ps:
            x.join()
        el = time.monotonic() - t0
        ok = sum(t[0] for t in tot)
        print("signed connects/s (%d clients): %.0f  (errors %d)" %
              (a.conc, ok / el, sum(t[1] for t in tot)))
        # Approvals: K remote-looking devices ask, one admin approves.
        adm = Ws(port)
        ch = adm.recv()
        res = adm.req("connect", {
            "minProtocol": 4, "maxProtocol": 4,
            "client": {"id": "cli", "version": "bench", "platform": "linux",
                       "mode": "cli"}, "role": "operator",
            "scopes": ["operator.admin"], "auth": {"token": "T"}})
        assert res["ok"], res
        rids = []
        for _ in range(a.approvals):
            w, res = signed_connect(port, nacl.signing.SigningKey.generate(),
                                    "X-Forwarded-For: 203.0.113.9\r\n")
            rids.append(res["error"]["details"]["requestId"])
            w.close()
        db = os.path.join(st, "state", "clawgate.sqlite")
        t0 = time.monotonic()
        for i, rid in enumerate(rids):
            r = adm.req("device.pair.approve", {"requestId": rid}, str(i))
            assert r["ok"], r
        el = time.monotonic() - t0
        print("durable approvals/s (sequential, one caller): %.0f" %
              (len(rids) / el))
        # Visibility: approve one more and read it at once, read-only.
        w, res = signed_connect(port, nacl.signing.SigningKey.generate(),
                                "X-Forwarded-For: 203.0.113.9\r\n")
        rid = res["error"]["details"]["requestId"]
        r = adm.req("device.pair.approve", {"requestId": rid}, "v")
        did = r["payload"]["device"]["deviceId"]
        out = subprocess.run(["sqlite3", "-readonly", db,
                              "select count(*) from paired_devices where "
                              "device_id='%s'" % did],
                             capture_output=True, text=True)
        print("approval visible to sqlite3 -readonly right after the "
              "answer: %s" % ("yes" if out.stdout.strip() == "1" else
                              "NO (%r)" % out.stdout))
        adm.close()
    finally:
        p.terminate()
        p.wait(10)
        shutil.rmtree(st, ignore_errors=True)


if __name__ == "__main__":
    main()
