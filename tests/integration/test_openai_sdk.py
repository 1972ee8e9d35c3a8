"""The official OpenAI SDK for Node (npm `openai`) as a real client of the
gateway: models, chat (JSON, stream, tools), responses (JSON, stream),
embeddings, gateway token as the API key. The SDK is installed by
tests/integration/sdk/install.sh (contrib/test.sh calls it); without it, or
without node, these tests skip."""

import json
import os
import subprocess

import pytest

from harness import node_bin
from oahelp import oagw, up, upstream  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_DIR = os.environ.get("CLAWGATE_SDK_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
    "clawgate-sdk")
CHECKS = ["models", "chat", "chatStream", "chatTools", "responses",
          "responsesStream", "embeddings", "badKey"]


@pytest.fixture(scope="module")
def sdk():
    if not node_bin():
        pytest.skip("node not installed")
    if not os.path.isdir(os.path.join(SDK_DIR, "node_modules", "openai")):
        pytest.skip("OpenAI SDK not installed (run "
                    "tests/integration/sdk/install.sh)")
    return SDK_DIR


@pytest.mark.parametrize("check", CHECKS)
def test_sdk(sdk, oagw, up, check):
    p = subprocess.run(
        [node_bin(), os.path.join(HERE, "sdk", "sdk-check.mjs"), sdk,
         oagw.http_base + "/v1", oagw.token, check],
        capture_output=True, text=True, timeout=60)
    lines = [json.loads(x) for x in p.stdout.splitlines()
             if x.startswith("{")]
    assert lines, "no output; stderr:\n" + p.stderr[-2000:]
    assert lines[0]["ok"], lines[0]["detail"]
    assert p.returncode == 0
