"""gateway.http.maxConnections against the open-file limit
(doc/hardening.md): a stream costs two sockets while some provider is
reached over plain http (HTTP/1.1: a connection per request), one when
every provider is https:// (HTTP/2 multiplexes the streams over a few
connections), so the cap fitted to a 2,048-descriptor hard limit is
(2048 - 512) / 2 or (2048 - 512) / 1."""

import shutil

import pytest

from harness import clawgate_only

pytestmark = clawgate_only("the descriptor budget is clawgate's")

NOFILE = 2048


def provider(base):
    return {"baseUrl": base, "apiKey": "sk-x", "api": "openai-completions",
            "models": [{"id": "m"}]}


def lowered_to(launcher, providers):
    if not shutil.which("prlimit"):
        pytest.skip("needs prlimit (util-linux)")
    cfg = {"gateway": {"mode": "local", "http": {"maxConnections": 4096}}}
    if providers:
        cfg["models"] = {"providers": providers}
    gw = launcher.start(config=cfg, prefix=[
        "prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--"])
    gw.stop()
    log = gw.stderr()
    mark = "gateway.http.maxConnections 4096 lowered to "
    assert mark in log, log[-3000:]
    return int(log.split(mark, 1)[1].split(":", 1)[0])


def test_plain_http_provider_counts_two_sockets(launcher):
    assert lowered_to(launcher, {
        "tls": provider("https://127.0.0.1:9/v1"),
        "local": provider("http://127.0.0.1:9/v1")}) == (NOFILE - 512) // 2


def test_https_providers_count_one_socket(launcher):
    assert lowered_to(launcher, {
        "a": provider("https://127.0.0.1:9/v1"),
        "b": provider("HTTPS://localhost:9/v1")}) == NOFILE - 512


def test_no_provider_counts_two_sockets(launcher):
    assert lowered_to(launcher, None) == (NOFILE - 512) // 2
