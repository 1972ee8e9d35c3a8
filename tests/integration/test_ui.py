"""The Control UI on the gateway port (issue 8, src/api/api-ui.c): static
files, SPA fallback, base path, index rewrite + CSP hashes, security
headers, 304, gzip, control-ui-config.json, the switch, the install page,
and the handshake details the UI depends on."""

import base64
import email.utils
import gzip
import hashlib
import os
import re
import socket
import time

import pytest

from harness import clawgate_only
from pairing_util import Device, device_connect

pytestmark = clawgate_only("clawgate's Control UI server and its roots")

INLINE_A = "\n      globalThis.x = 1;\n    "
INLINE_B = "document.documentElement.dataset.t = 'dark';"
INDEX = """<!doctype html>
<html data-openclaw-control-ui-build-id="b-123" lang="en">
  <head>
    <link rel="icon" type="image/svg+xml" href="./favicon.svg" />
    <link rel="manifest" href="./manifest.webmanifest" />
    <script data-cfasync="false">%s</script>
    <script type="module" crossorigin src="./assets/app.js"></script>
    <link rel="modulepreload" crossorigin href="./assets/chunk.js">
    <SCRIPT>%s</SCRIPT>
    <script src="./assets/empty.js"></script>
  </head>
  <body><openclaw-app></openclaw-app></body>
</html>
""" % (INLINE_A, INLINE_B)
APP_JS = "console.log('app');\n" * 50
FILES = {
    "index.html": INDEX,
    "assets/app.js": APP_JS,
    "assets/chunk.js": "export const c = 1;\n",
    "assets/style.css": "body{color:red}\n",
    "favicon.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
    "manifest.webmanifest": "{}",
    "fonts/a.woff2": "wOF2",
    "apple-touch-icon.png": "\x89PNG",
    "asset-manifest.json": "{\"a\":1}",
    "sw.js": "self.x=1;",
}

CSP_BASE = ("default-src 'self'; base-uri 'none'; object-src 'none'; "
            "frame-ancestors 'none'; frame-src 'self' http: https:; "
            "script-src 'self'%s; style-src 'self' 'unsafe-inline' "
            "https://fonts.googleapis.com; img-src 'self' data: blob: "
            "https:; media-src 'self' data: blob:; font-src 'self' "
            "https://fonts.gstatic.com; worker-src 'self'; connect-src "
            "'self' ws: wss: data: https://api.openai.com "
            "https://tweakcn.com%s")
NOT_FOUND_JSON = {"error": {"message": "Not Found", "type": "not_found"}}


def make_root(base, precompressed=False):
    os.makedirs(base, exist_ok=True)
    for rel, text in FILES.items():
        p = os.path.join(base, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="latin-1") as f:
            f.write(text)
    if precompressed:
        with open(os.path.join(base, "assets/app.js.gz"), "wb") as f:
            f.write(gzip.compress(APP_JS.encode()))
        with open(os.path.join(base, "assets/app.js.br"), "wb") as f:
            f.write(b"BROTLI-STAND-IN")
    return base


@pytest.fixture
def ui_root(tmp_path):
    return make_root(str(tmp_path / "ui"))


def start_ui(launcher, root=None, installed=None, **ui_cfg):
    cfg = dict(ui_cfg)
    if root:
        cfg["root"] = root
    env = {"CLAWGATE_CONTROL_UI_DIR": installed or ""}
    return launcher.start(config={"gateway": {"controlUi": cfg}}, env=env)


def sha(text):
    return "sha256-" + base64.b64encode(
        hashlib.sha256(text.encode()).digest()).decode()


def raw_get(gw, path, headers=None):
    """GET with the path exactly as given (no client normalisation)."""
    s = socket.create_connection((gw.host, gw.port), timeout=5)
    try:
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n" % (
            path, gw.host, gw.port)
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        s.sendall((req + "\r\n").encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def test_index_rewrite_csp_and_headers(launcher, ui_root):
    gw = start_ui(launcher, ui_root)
    r = gw.http("GET", "/", headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    html = r.text
    assert html.startswith('<!doctype html>\n<html '
                           'data-openclaw-control-ui-base-path="" '
                           'data-openclaw-terminal-enabled="false" '
                           'lang="en">')
    assert "b-123" not in html
    assert 'href="/favicon.svg"' in html
    assert 'href="/manifest.webmanifest"' in html
    assert 'src="/assets/app.js"' in html
    assert 'href="/assets/chunk.js"' in html
    # The CSP carries the hash of each inline script, in order; scripts
    # with src are not hashed.
    host = "127.0.0.1"
    assert r.headers["Content-Security-Policy"] == CSP_BASE % (
        " '%s' '%s'" % (sha(INLINE_A), sha(INLINE_B)),
        " http://%s:* https://%s:*" % (host, host))
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Permissions-Policy"] == (
        "camera=(self), microphone=*, geolocation=*, clipboard-write=*")
    # Files carry the CSP without hashes (one header only).
    r = gw.http("GET", "/favicon.svg")
    assert r.headers["Content-Security-Policy"] == CSP_BASE % ("", "")
    assert r.headers["X-Frame-Options"] == "DENY"


def test_content_types(launcher, ui_root):
    gw = start_ui(launcher, ui_root)
    want = {
        "/assets/app.js": "application/javascript; charset=utf-8",
        "/assets/style.css": "text/css; charset=utf-8",
        "/favicon.svg": "image/svg+xml",
        "/manifest.webmanifest": "application/manifest+json; charset=utf-8",
        "/fonts/a.woff2": "font/woff2",
        "/apple-touch-icon.png": "image/png",
        "/asset-manifest.json": "application/json; charset=utf-8",
        "/sw.js": "application/javascript; charset=utf-8",
        # root public assets also under the default namespace
        "/__openclaw__/favicon.svg": "image/svg+xml",
    }
    for path, ctype in want.items():
        r = gw.http("GET", path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"] == ctype, path
    assert gw.http("GET", "/assets/app.js").text == APP_JS
    # Deep links load chunks relative to the page.
    r = gw.http("GET", "/chat/main/assets/app.js")
    assert r.status_code == 200 and r.text == APP_JS


def test_spa_fallback_and_exclusions(launcher, ui_root):
    gw = start_ui(launcher, ui_root)
    for path in ("/settings/devices", "/chat/main", "/approve/abc",
                 "/focus/x/y"):
        r = gw.http("GET", path, headers={"Accept": "text/html,*/*;q=0.8"})
        assert r.status_code == 200, path
        assert "data-openclaw-control-ui-base-path" in r.text, path
    # Missing static files and non-HTML clients: plain 404.
    for path, accept in (("/assets/nope.js", "text/html"),
                         ("/nope.png", "*/*"),
                         ("/settings/devices", "application/json")):
        r = gw.http("GET", path, headers={"Accept": accept})
        assert r.status_code == 404, path
        assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert r.text == "Not Found"
    r = gw.http("GET", "/ui/x", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.text == "Not Found"
    # API namespaces stay the gateway's (JSON 404).
    for path in ("/v1/nope", "/api/nope", "/plugins/x", "/healthz/x"):
        r = gw.http("GET", path, headers={"Accept": "text/html"})
        assert r.status_code == 404, path
        assert r.json() == NOT_FOUND_JSON, path
    # Writes are not the UI's.
    r = gw.http("POST", "/settings", data=b"{}")
    assert r.status_code == 404 and r.json() == NOT_FOUND_JSON
    # The API routes come first.
    assert gw.http("GET", "/healthz").json()["ok"] is True


def test_head(launcher, ui_root):
    gw = start_ui(launcher, ui_root)
    r = gw.http("HEAD", "/assets/app.js")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) == len(APP_JS)
    r = gw.http("HEAD", "/")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    get = gw.http("GET", "/", headers={"Accept-Encoding": "gzip"},
                  stream=True)
    r = gw.http("HEAD", "/", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Content-Length"] == get.headers["Content-Length"]


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
    "/assets/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt", "/assets/..%5c..%5csecret.txt",
    "/./../secret.txt",
])
def test_traversal_refused(launcher, tmp_path, path):
    root = make_root(str(tmp_path / "pub" / "ui"))
    with open(str(tmp_path / "pub" / "secret.txt"), "w") as f:
        f.write("TOP-SECRET")
    gw = start_ui(launcher, root)
    status, body = raw_get(gw, path, {"Accept": "text/plain"})
    assert b"TOP-SECRET" not in body
    assert status == 404


def test_symlink_and_hardlink_escape(launcher, tmp_path):
    root = make_root(str(tmp_path / "ui"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.js").write_text("TOP-SECRET")
    os.symlink(str(outside / "secret.js"), os.path.join(root, "leak.js"))
    os.symlink(str(outside), os.path.join(root, "assets", "out"))
    os.symlink(os.path.join(root, "assets", "app.js"),
               os.path.join(root, "inside.js"))
    os.link(str(outside / "secret.js"), os.path.join(root, "hard.js"))
    gw = start_ui(launcher, root)
    for path in ("/leak.js", "/assets/out/secret.js", "/hard.js"):
        r = gw.http("GET", path)
        assert r.status_code == 404, path
        assert "TOP-SECRET" not in r.text
    # A link that stays inside the root is fine.
    r = gw.http("GET", "/inside.js")
    assert r.status_code == 200 and r.text == APP_JS


def test_last_modified_and_304(launcher, ui_root):
    gw = start_ui(launcher, ui_root)
    r = gw.http("GET", "/assets/style.css")
    lm = r.headers["Last-Modified"]
    mtime = os.stat(os.path.join(ui_root, "assets/style.css")).st_mtime
    assert email.utils.parsedate_to_datetime(lm).timestamp() == int(mtime)
    assert r.headers["Cache-Control"] == "no-cache"
    r = gw.http("GET", "/assets/style.css", headers={"If-Modified-Since": lm})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["Last-Modified"] == lm
    old = email.utils.formatdate(int(mtime) - 3600, usegmt=True)
    r = gw.http("GET", "/assets/style.css", headers={"If-Modified-Since": old})
    assert r.status_code == 200
    r = gw.http("GET", "/assets/style.css", headers={"If-None-Match": "*"})
    assert r.status_code == 304
    # An entity tag we never sent does not match.
    r = gw.http("GET", "/assets/style.css", headers={
        "If-None-Match": '"x"', "If-Modified-Since": lm})
    assert r.status_code == 200


def test_gzip_index_and_not_acceptable(launcher, ui_root):
    gw = start_ui(launcher, ui_root)
    plain = gw.http("GET", "/", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    r = gw.http("GET", "/", headers={"Accept-Encoding": "gzip, deflate"},
                stream=True)
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Vary"] == "Accept-Encoding"
    body = r.raw.read()
    assert gzip.decompress(body).decode() == plain.text
    r = gw.http("GET", "/", headers={"Accept-Encoding": "identity;q=0"})
    assert r.status_code == 406


def test_installed_copy_precompressed_and_immutable(launcher, tmp_path):
    inst = make_root(str(tmp_path / "share" / "control-ui"),
                     precompressed=True)
    gw = start_ui(launcher, installed=inst)
    r = gw.http("GET", "/assets/app.js",
                headers={"Accept-Encoding": "gzip"}, stream=True)
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert gzip.decompress(r.raw.read()).decode() == APP_JS
    r = gw.http("GET", "/assets/app.js",
                headers={"Accept-Encoding": "br, gzip"}, stream=True)
    assert r.headers["Content-Encoding"] == "br"
    assert r.raw.read() == b"BROTLI-STAND-IN"
    r = gw.http("GET", "/assets/app.js", headers={"Accept-Encoding": ""})
    assert "Content-Encoding" not in r.headers and r.text == APP_JS
    # The precompressed files themselves are not URLs of the installed copy.
    assert gw.http("GET", "/assets/app.js.gz").status_code == 404
    # Outside assets/: no-cache, no substitution.
    r = gw.http("GET", "/favicon.svg", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Cache-Control"] == "no-cache"
    assert "Content-Encoding" not in r.headers
    # hello-ok: the served UI is never the gateway's own build.
    ws = gw.connect()
    assert ws.hello["server"]["controlUiBuildSource"] == "configured"
    # A configured root serves its .gz files as plain files (upstream).
    root = make_root(str(tmp_path / "conf"), precompressed=True)
    gw2 = start_ui(launcher, root)
    r = gw2.http("GET", "/assets/app.js", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in r.headers and r.text == APP_JS
    r = gw2.http("GET", "/assets/app.js.gz")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"


def test_base_path(launcher, ui_root):
    gw = start_ui(launcher, ui_root, basePath="/openclaw/")
    r = gw.http("GET", "/openclaw")
    assert r.status_code == 302 and r.headers["Location"] == "/openclaw/"
    r = gw.http("GET", "/openclaw/", headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert 'data-openclaw-control-ui-base-path="/openclaw"' in r.text
    assert 'src="/openclaw/assets/app.js"' in r.text
    assert 'href="/openclaw/favicon.svg"' in r.text
    assert gw.http("GET", "/openclaw/assets/app.js").text == APP_JS
    r = gw.http("GET", "/openclaw/settings/devices",
                headers={"Accept": "text/html"})
    assert r.status_code == 200 and "openclaw-app" in r.text
    # Outside the base path the UI is not there.
    r = gw.http("GET", "/", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.json() == NOT_FOUND_JSON
    assert gw.http("GET", "/control-ui-config.json").status_code == 404
    r = gw.http("GET", "/openclaw/control-ui-config.json",
                headers={"Authorization": "Bearer T"})
    assert r.status_code == 200 and r.json()["basePath"] == "/openclaw"
    # The WebSocket upgrades on the base path.
    ws = gw.ws(path="/openclaw")
    assert ws.challenge["event"] == "connect.challenge"


def test_control_ui_config(launcher, ui_root):
    gw = start_ui(launcher, ui_root)
    for path in ("/control-ui-config.json",
                 "/__openclaw/control-ui-config.json",
                 "/__openclaw__/control-ui-config.json"):
        r = gw.http("GET", path)
        assert r.status_code == 401, path
        assert r.json() == {"error": {"message": "Unauthorized",
                                      "type": "unauthorized"}}
        r = gw.http("GET", path, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401, path
        r = gw.http("GET", path, headers={"Authorization": "Bearer T"})
        assert r.status_code == 200, path
        assert r.headers["Cache-Control"] == "no-cache"
        c = r.json()
        assert c["basePath"] == "" and c["serverVersion"] == "2026.9.6"
        assert c["assistantName"] == "Assistant"
        assert c["terminalEnabled"] is False
        assert c["pluginFrameGrants"] == []
        assert "serverBuildId" not in c	# a configured root
    # The UI's own bearer is the operator device token of hello-ok.
    dev = Device()
    ws, res = device_connect(gw, dev, scopes=["operator.read"])
    assert res["ok"] is True, res
    tok = res["payload"]["auth"]["deviceToken"]
    r = gw.http("GET", "/control-ui-config.json",
                headers={"Authorization": "Bearer " + tok})
    assert r.status_code == 200


def test_disabled(launcher, ui_root):
    gw = start_ui(launcher, ui_root, enabled=False)
    for path in ("/", "/assets/app.js", "/settings/devices"):
        r = gw.http("GET", path, headers={"Accept": "text/html"})
        assert r.status_code == 404, path
        assert r.json() == NOT_FOUND_JSON
    r = gw.http("GET", "/control-ui-config.json",
                headers={"Authorization": "Bearer T"})
    assert r.status_code == 404


def test_switch_is_hot(launcher, ui_root):
    gw = start_ui(launcher, ui_root)
    assert gw.http("GET", "/").status_code == 200
    with open(gw.config_path, "w") as f:
        f.write('{"gateway":{"controlUi":{"root":"%s","enabled":false}}}'
                % ui_root)
    deadline = time.monotonic() + 20
    while gw.http("GET", "/").status_code != 404:
        assert time.monotonic() < deadline, "the switch was not applied"
        time.sleep(0.05)
    assert gw.http("GET", "/").json() == NOT_FOUND_JSON
    assert gw.alive()


def banner(gw, prefix="Control UI: "):
    """The daemon's Control UI line on stdout (printed once it is up)."""
    deadline = time.monotonic() + 10
    while True:
        for line in gw.stdout().splitlines():
            if line.startswith(prefix):
                return line
        assert time.monotonic() < deadline, gw.stdout()
        time.sleep(0.05)


def test_banner(launcher, ui_root):
    gw = start_ui(launcher, ui_root, basePath="/oc")
    line = banner(gw, "Dashboard: ")
    assert line.startswith("Dashboard: http://127.0.0.1:%d/oc/" % gw.port)
    assert "Control UI: " not in gw.stdout()


def test_no_ui_installed_page(launcher):
    gw = start_ui(launcher)
    assert banner(gw) == "Control UI: not installed (make install-ui)"
    r = gw.http("GET", "/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert r.status_code == 503
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "make install-ui" in r.text and "<html" in r.text
    r = gw.http("GET", "/chat/main", headers={"Accept": "text/html"})
    assert "make install-ui" in r.text
    # Not to API clients, and not for assets.
    r = gw.http("GET", "/", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json() == NOT_FOUND_JSON
    r = gw.http("GET", "/assets/app.js", headers={"Accept": "*/*"})
    assert r.status_code == 404
    ws = gw.connect()
    assert ws.hello["server"]["controlUiBuildSource"] == "bundled"


def test_configured_root_missing(launcher, tmp_path):
    missing = str(tmp_path / "nope")
    gw = start_ui(launcher, missing)
    r = gw.http("GET", "/", headers={"Accept": "text/html"})
    assert r.status_code == 503
    assert ("Control UI assets not found at %s" % missing) in r.text
    ws = gw.connect()
    assert ws.hello["server"]["controlUiBuildSource"] == "configured"


def test_ui_pairing_required_details(launcher, ui_root):
    gw = launcher.start(config={"gateway": {
        "controlUi": {"root": ui_root},
        "nodes": {"pairing": {"autoApproveLocal": False}}}})
    dev = Device()
    scopes = ["operator.admin", "operator.read", "operator.pairing"]
    origin = {"Origin": "http://127.0.0.1:%d" % gw.port}
    ws, res = device_connect(gw, dev, headers=origin, scopes=scopes,
                             client_id="openclaw-control-ui", mode="webchat")
    assert res["ok"] is False
    err = res["error"]
    assert err["code"] == "NOT_PAIRED"
    assert err["message"] == "pairing required: device is not approved yet"
    d = err["details"]
    assert d["code"] == "PAIRING_REQUIRED" and d["reason"] == "not-paired"
    assert d["recommendedNextStep"] == "wait_then_retry"
    assert d["retryable"] is True and d["pauseReconnect"] is False
    assert d["remediationHint"] == (
        "Approve this device from the pending pairing requests.")
    assert d["deviceId"] == dev.id and d["requestedRole"] == "operator"
    assert d["requestedScopes"] == scopes
    assert ws.expect_close() == (1008, "%s (requestId: %s)" % (
        err["message"], d["requestId"]))
    # Approved, the same browser connects; the list marks it connected.
    op = gw.connect()
    op.call("device.pair.approve", {"requestId": d["requestId"]})
    ws, res = device_connect(gw, dev, headers=origin, scopes=scopes,
                             client_id="openclaw-control-ui", mode="webchat")
    assert res["ok"] is True, res
    paired = op.call("device.pair.list", {})["paired"]
    assert [p["connected"] for p in paired if p["deviceId"] == dev.id] == \
        [True]
    ws.close()
    deadline = time.monotonic() + 10
    while True:
        paired = op.call("device.pair.list", {})["paired"]
        if [p["connected"] for p in paired
                if p["deviceId"] == dev.id] == [False]:
            break
        assert time.monotonic() < deadline, paired
        op.call("health")	# one round trip per check


def test_ui_file_not_served_from_index_regex(launcher, tmp_path):
    # An index without <html> or scripts is served as it is.
    root = str(tmp_path / "ui")
    os.makedirs(root)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("plain")
    gw = start_ui(launcher, root)
    r = gw.http("GET", "/")
    assert r.text == "plain"
    assert re.search(r"script-src 'self'; ", r.headers[
        "Content-Security-Policy"])
