"""Device identities for the pairing tests (Ed25519 via python3-nacl).

A Device signs connect params like the real clients: device.id = hex
sha256(raw public key), base64url without padding, the v3 payload (v2 on
request), signedAt = now, nonce = the socket's connect.challenge.
"""

import base64
import hashlib
import os
import sqlite3
import time

import nacl.signing

from harness import ALL_SCOPES

# A peer that is loopback but sends proxy headers is not local: its
# pairing is never approved silently.
REMOTE = {"X-Forwarded-For": "203.0.113.7"}


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def norm_meta(s):
    if s is None:
        return ""
    s = s.strip()
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


class Device:
    def __init__(self, seed=None):
        self.sk = nacl.signing.SigningKey(seed or os.urandom(32))
        self.pub = bytes(self.sk.verify_key)
        self.id = hashlib.sha256(self.pub).hexdigest()
        self.public_key = b64u(self.pub)
        self.token = None

    def payload(self, params, nonce, signed_at, version=3):
        cl = params["client"]
        auth = params.get("auth") or {}
        tok = auth.get("token") or auth.get("deviceToken") or \
            auth.get("bootstrapToken") or ""
        fields = ["v%d" % version, self.id, cl["id"], cl["mode"],
                  params.get("role", "operator"),
                  ",".join(params.get("scopes", [])), str(signed_at), tok,
                  nonce]
        if version == 3:
            fields += [norm_meta(cl.get("platform")),
                       norm_meta(cl.get("deviceFamily"))]
        return "|".join(fields)

    def sign(self, params, challenge, signed_at=None, version=3, **over):
        signed_at = int(time.time() * 1000) if signed_at is None \
            else signed_at
        msg = self.payload(params, challenge, signed_at, version)
        sig = self.sk.sign(msg.encode()).signature
        dev = {"id": self.id, "publicKey": self.public_key,
               "signature": b64u(sig), "signedAt": signed_at,
               "nonce": challenge}
        dev.update(over)
        params["device"] = dev
        return params


def device_connect(gw, dev, headers=None, scopes=None, token=None,
                   auth=None, role="operator", client_id="cli", mode="cli",
                   version=3, client=None, **kw):
    """Open a socket and send a signed connect; returns (ws, res)."""
    ws = gw.ws(headers=headers)
    nonce = ws.challenge["payload"]["nonce"]
    params = gw.connect_params(scopes=["operator.read"] if scopes is None
                               else scopes, token=token, auth=auth,
                               role=role, client_id=client_id, mode=mode,
                               client=client)
    dev.sign(params, nonce, version=version, **kw)
    res = ws.request("connect", params)
    return ws, res


def admin(gw, scopes=None):
    """A device-less admin/pairing operator (shared token)."""
    return gw.connect(scopes=ALL_SCOPES if scopes is None else scopes)


def db_path(gw):
    return os.path.join(gw.state_dir, "state", "clawgate.sqlite")


def db_query(gw, sql, args=()):
    """A read-only one-shot query, as an operator would run it."""
    con = sqlite3.connect("file:%s?mode=ro" % db_path(gw), uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()
