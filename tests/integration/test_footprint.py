"""Idle footprint (issue 2, idle RSS < 10 MB): an idle gateway does not
map libcurl (src/agent/curl-dl.c loads it on the first upstream call) and
does not create its Ed25519 identity until a client asks for it (the first
use of OpenSSL costs ~2 MB). The figures themselves are in tests/bench."""

import os

import pytest

from harness import EXT_URL, clawgate_only

pytestmark = pytest.mark.skipif(bool(EXT_URL),
                                reason="needs fresh daemons")

READ = ["operator.read"]


def mapped_libs(pid):
    with open("/proc/%d/maps" % pid) as f:
        return {os.path.basename(line.split()[-1]) for line in f
                if ".so" in line}


@clawgate_only("libcurl is a clawgate implementation detail")
def test_idle_gateway_does_not_map_libcurl(start_gateway):
    gw = start_gateway()
    c = gw.connect(scopes=READ)
    assert c.call("health")["ok"] is True
    libs = mapped_libs(gw.proc.pid)
    assert not [n for n in libs if n.startswith("libcurl")], sorted(libs)


@clawgate_only("identity file layout is ours")
def test_identity_created_on_first_use(start_gateway):
    gw = start_gateway()
    path = os.path.join(gw.state_dir, "identity", "device.json")
    assert not os.path.exists(path)
    ident = gw.connect(scopes=READ).call("gateway.identity.get")
    assert os.path.exists(path)
    assert len(ident["deviceId"]) == 64
