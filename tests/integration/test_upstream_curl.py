"""The libcurl upstream path under the same tests as the default one.

Since issue 11, upstreams at http:// on an IP literal (every fake upstream
of this suite) go out through h1 (src/agent/h1.c); libcurl serves https,
host names, proxies and CLAWGATE_UPSTREAM_CURL=1. So that neither path is
left with a thinner suite, this module collects the OpenAI HTTP and
/v1/responses tests again with CLAWGATE_UPSTREAM_CURL=1 set for every
gateway they start, and checks libcurl is what served them.
"""

import os

import pytest

from test_upstream_h1 import libcurl_mapped


@pytest.fixture(scope="module", autouse=True)
def _through_libcurl():
    # Module scope, autouse: in place before the module's gateways start
    # (harness.clean_env copies os.environ when a gateway is launched).
    old = os.environ.get("CLAWGATE_UPSTREAM_CURL")
    os.environ["CLAWGATE_UPSTREAM_CURL"] = "1"
    yield
    if old is None:
        os.environ.pop("CLAWGATE_UPSTREAM_CURL", None)
    else:
        os.environ["CLAWGATE_UPSTREAM_CURL"] = old


from test_openai_http import *  # noqa: E402,F401,F403
from test_responses import *  # noqa: E402,F401,F403


def test_zz_served_by_libcurl(oagw, up):
    """The module's gateway answered through libcurl: it is mapped (only
    once a request needed it) and the upstream saw libcurl's
    Accept-Encoding (h1 sends none)."""
    r = post(oagw, "/v1/chat/completions", chat("hi"))
    assert r.status_code == 200, r.text
    hdrs = {k.lower(): v for k, v in up.snapshot()["headers"][-1].items()}
    assert "accept-encoding" in hdrs, hdrs
    assert libcurl_mapped(oagw)
