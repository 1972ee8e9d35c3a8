"""One lifecycle (finding D2): SIGTERM and the in-place restart (SIGUSR1)
under load end cleanly, with no sanitizer report (run it with an ASan
build: CLAWGATE_BIN=build/asan/clawgate)."""

import signal
import threading
import time

import requests

from harness import sanitizer_report, wait_ready
from relhelp import figure, scale


class Load:
    """3 keep-alive HTTP clients looping on /tools/invoke and /v1/models,
    3 WS clients looping on RPCs, until stopped."""

    def __init__(self, gw):
        self.gw = gw
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._http, daemon=True)
                        for _ in range(3)]
        self.threads += [threading.Thread(target=self._ws, daemon=True)
                         for _ in range(3)]
        self.done = 0

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(15)

    def _http(self):
        hdr = {"Authorization": "Bearer " + self.gw.token}
        while not self.stop.is_set():
            try:
                with requests.Session() as s:
                    while not self.stop.is_set():
                        s.post(self.gw.http_base + "/tools/invoke",
                               json={"tool": "sessions_list", "args": {}},
                               headers=hdr, timeout=5)
                        s.get(self.gw.http_base + "/v1/models",
                              headers=hdr, timeout=5)
                        self.done += 1
            except (requests.RequestException, OSError):
                time.sleep(0.02)

    def _ws(self):
        while not self.stop.is_set():
            try:
                c = self.gw.connect(scopes=["operator.read",
                                            "operator.write"])
                while not self.stop.is_set():
                    c.request("sessions.list", {}, timeout=5)
                    c.request("health", {}, timeout=5)
                    self.done += 1
            except Exception:
                time.sleep(0.02)
            finally:
                try:
                    c.close()
                except Exception:
                    pass


def _wait_load(load, n=20, timeout=20):
    deadline = time.monotonic() + timeout
    while load.done < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_sigterm_under_load(launcher):
    trials = scale(2, 20)
    bad = 0
    for _ in range(trials):
        gw = launcher.start()
        with Load(gw) as load:
            _wait_load(load)
            assert load.done >= 20, "no load before the signal"
            rc = gw.stop(signal.SIGTERM)
        rep = sanitizer_report(gw.stderr())
        if rc != 0 or rep:
            bad += 1
        assert rc == 0, "exit %s after SIGTERM; stderr:\n%s" % (
            rc, gw.stderr()[-3000:])
        assert rep is None, rep
    figure("sigterm_under_load", "%d trials, %d bad" % (trials, bad))


def test_sigusr1_restart_under_load(launcher):
    trials = scale(2, 20)
    gw = launcher.start(env={"CLAWGATE_RESTART_COOLDOWN_MS": "1"})
    pid = gw.proc.pid
    with Load(gw) as load:
        for i in range(trials):
            _wait_load(load, n=load.done + 10)
            gw.proc.send_signal(signal.SIGUSR1)
            # the restart is in place: same pid, a new start printed
            deadline = time.monotonic() + 30
            while gw.stdout().count("Gateway URL:") < i + 2 and \
                    gw.proc.poll() is None and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            assert gw.proc.poll() is None, gw.stderr()[-3000:]
            assert gw.stdout().count("Gateway URL:") == i + 2
            wait_ready(gw, timeout=20)
            assert gw.proc.pid == pid
    rep = sanitizer_report(gw.stderr())
    assert rep is None, rep
    assert gw.stop() == 0
    assert sanitizer_report(gw.stderr()) is None
    figure("sigusr1_under_load", "%d restarts, 0 bad" % trials)
