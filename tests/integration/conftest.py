"""pytest fixtures of the black-box suite (helpers live in harness.py)."""

import os
import re
import shutil
import tempfile

import pytest

from harness import (EXT_TOKEN, EXT_URL, Gateway, Launcher,
                     frame_validator)


@pytest.fixture(scope="session")
def validator():
    return frame_validator()


@pytest.fixture(scope="session")
def tmp_root():
    d = tempfile.mkdtemp(prefix="clawgate-it-")
    yield d
    if not os.environ.get("CLAWGATE_TEST_KEEP"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def launcher(tmp_root):
    """Factory for fresh daemons; all are stopped and checked at teardown."""
    lch = Launcher(tmp_root)
    yield lch
    lch.cleanup()


# `start_gateway(config=..., env=..., args=...)` is the factory of the brief.
@pytest.fixture
def start_gateway(launcher):
    return launcher.start


@pytest.fixture(scope="module")
def gateway(tmp_root):
    """One daemon shared by the tests of a module (or CLAWGATE_TEST_URL)."""
    if EXT_URL:
        m = re.match(r"wss?://([^:/]+):(\d+)", EXT_URL)
        assert m, "CLAWGATE_TEST_URL must look like ws://127.0.0.1:PORT"
        yield Gateway(int(m.group(2)), token=EXT_TOKEN, host=m.group(1))
        return
    lch = Launcher(tmp_root)
    gw = lch.start()
    yield gw
    lch.cleanup()


