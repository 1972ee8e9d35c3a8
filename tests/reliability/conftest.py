"""Fixtures of the reliability harness (helpers: relhelp.py, and the
black-box harness of tests/integration, on PYTHONPATH)."""

import os
import shutil
import tempfile

import pytest

from harness import Launcher


@pytest.fixture(scope="session")
def tmp_root():
    d = tempfile.mkdtemp(prefix="clawgate-rel-")
    yield d
    if not os.environ.get("CLAWGATE_TEST_KEEP"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def launcher(tmp_root):
    lch = Launcher(tmp_root)
    yield lch
    lch.cleanup()
