"""Our openclaw-compatible CLI as a client of a running daemon (SPEC §5).

Shapes follow reference/peer-cli-outputs.txt (the real CLI against the real
gateway). Runs the clawgate binary, so it skips with CLAWGATE_TEST_URL
unless CLAWGATE_BIN is also usable, and with CLAWGATE_BIN=openclaw it is the
real CLI (useful to check the expectations).
"""

import json

import pytest

from harness import EXT_URL, bin_missing, free_port

pytestmark = pytest.mark.skipif(bool(EXT_URL) and bin_missing(),
                                reason="needs the clawgate binary")


def cli(launcher, *args, timeout=30):
    return launcher.run(list(args), timeout=timeout)


def test_gateway_call_health_json(gateway, launcher):
    rc, out, err = cli(launcher, "gateway", "call", "health", "--url",
                       gateway.url, "--token", gateway.token, "--json")
    assert rc == 0, err
    payload = json.loads(out)
    assert payload["ok"] is True
    assert isinstance(payload["ts"], int)


def test_gateway_call_with_params(gateway, launcher):
    rc, out, err = cli(launcher, "gateway", "call", "logs.tail", "--params",
                       '{"limit": 2}', "--url", gateway.url, "--token",
                       gateway.token, "--json")
    assert rc == 0, err
    payload = json.loads(out)
    assert len(payload["lines"]) <= 2


def test_gateway_call_human(gateway, launcher):
    rc, out, err = cli(launcher, "gateway", "call", "health", "--url",
                       gateway.url, "--token", gateway.token)
    assert rc == 0, err
    assert out.startswith("Gateway call: health")


def test_gateway_call_unknown_method_fails(gateway, launcher):
    rc, out, err = cli(launcher, "gateway", "call", "no.such.method",
                       "--url", gateway.url, "--token", gateway.token,
                       "--json")
    assert rc != 0
    assert "no.such.method" in out + err


def test_gateway_call_wrong_token_fails(gateway, launcher):
    rc, out, err = cli(launcher, "gateway", "call", "health", "--url",
                       gateway.url, "--token", "wrong", "--json")
    assert rc != 0
    assert "token mismatch" in out + err


def test_gateway_health(gateway, launcher):
    rc, out, err = cli(launcher, "gateway", "health", "--url", gateway.url,
                       "--token", gateway.token)
    assert rc == 0, err
    assert "Gateway Health" in out
    assert "OK" in out


def test_gateway_status_require_rpc(gateway, launcher):
    rc, out, err = cli(launcher, "gateway", "status", "--url", gateway.url,
                       "--token", gateway.token, "--require-rpc")
    assert rc == 0, out + err
    assert "Read probe: ok" in out
    assert "Capability: read-only" in out


def test_gateway_status_closed_port(launcher):
    port = free_port()
    rc, out, err = cli(launcher, "gateway", "status", "--url",
                       "ws://127.0.0.1:%d" % port, "--token", "T",
                       "--require-rpc")
    assert rc == 1


def test_status_dashboard_follows_url(gateway, launcher):
    """`status --url` points the dashboard line at the gateway probed, not
    at the port of the local config (a fresh state dir here)."""
    want = "http://127.0.0.1:%d/" % gateway.port
    rc, out, err = cli(launcher, "status", "--json", "--url", gateway.url,
                       "--token", gateway.token)
    assert rc == 0, err
    assert json.loads(out)["dashboard"] == want
    rc, out, err = cli(launcher, "status", "--url", gateway.url, "--token",
                       gateway.token)
    assert rc == 0, err
    assert "Dashboard: %s  (" % want in out, out
