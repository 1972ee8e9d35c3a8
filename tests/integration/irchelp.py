"""A real IRC server for the channel tests: Debian's ngircd started on a
free loopback port with a minimal config written into a temp dir (no
daemonizing: `ngircd -n -f conf`), and a person's IRC client made of a
Python socket. Everything waits on lines, never on a sleep."""

import os
import queue
import shutil
import socket
import subprocess
import threading
import time

import pytest

from harness import free_port

NGIRCD = shutil.which("ngircd") or "/usr/sbin/ngircd"
OPER_NAME = "op"
OPER_PASS = "oppw"


def require_ngircd():
    if not os.path.exists(NGIRCD):
        pytest.skip("ngircd is not installed (contrib/deps.sh installs it)")


def make_certs(d):
    """A test CA and a server certificate for 127.0.0.1 (openssl CLI);
    returns the CA file."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True,
                       capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
        "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key",
        "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2",
        "-extfile", "ext")
    return os.path.join(d, "ca.pem")


class IrcServer:
    """ngircd in the foreground; its log lines are kept for waiting."""

    def __init__(self, tmp_dir, extra_limits="", tls=False, password=None):
        require_ngircd()
        self.dir = tmp_dir
        self.port = free_port()
        self.tls_port = None
        ssl_section = ""
        if tls:
            self.tls_port = free_port()
            self.ca = make_certs(tmp_dir)
            ssl_section = ("[SSL]\nCertFile = %s\nKeyFile = %s\n"
                           "Ports = %d\n" % (
                               os.path.join(tmp_dir, "srv.pem"),
                               os.path.join(tmp_dir, "srv.key"),
                               self.tls_port))
        self.conf = os.path.join(tmp_dir, "ngircd.conf")
        with open(self.conf, "w") as f:
            f.write(
                "[Global]\nName = irc.test\nInfo = clawgate test\n"
                "Listen = 127.0.0.1\nPorts = %d\nMotdPhrase = test\n"
                "AdminInfo1 = test\nAdminInfo2 = test\n"
                "AdminEMail = test@example.invalid\n%s"
                "[Limits]\nMaxConnectionsIP = 0\nMaxNickLength = 30\n"
                "MaxJoins = 0\n%s"
                "[Options]\nPAM = no\nIdent = no\nDNS = no\n"
                "[Operator]\nName = %s\nPassword = %s\n%s"
                % (self.port,
                   "Password = %s\n" % password if password else "",
                   extra_limits, OPER_NAME, OPER_PASS,
                   ssl_section))
        self.lines = []
        self.cv = threading.Condition()
        self.proc = subprocess.Popen(
            [NGIRCD, "-n", "-f", self.conf], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait_log(lambda s: "ready." in s, 20)

    def _pump(self):
        for raw in self.proc.stdout:
            with self.cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip())
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)
            self.cv.notify_all()

    def wait_log(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        with self.cv:
            i = 0
            while True:
                while i < len(self.lines):
                    s = self.lines[i]
                    i += 1
                    if s is None:
                        raise AssertionError("ngircd exited:\n" +
                                             "\n".join(self.lines[-20:-1]))
                    if pred(s):
                        return s
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("ngircd log: condition not met:\n"
                                         + "\n".join(self.lines[-20:]))
                self.cv.wait(left)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def parse(line):
    """(prefix, command, params) of one IRC line."""
    prefix = None
    if line.startswith(":"):
        prefix, line = line[1:].split(" ", 1)
    if " :" in line:
        head, trail = line.split(" :", 1)
        parts = head.split()
        parts.append(trail)
    else:
        parts = line.split()
    return prefix, parts[0].upper(), parts[1:]


class IrcClient:
    """A person on IRC: registers, answers PING, collects lines."""

    def __init__(self, port, nick, user=None, password=None):
        self.nick = nick
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.sock.settimeout(None)     # the reader blocks; waits time out
        self.q = queue.Queue()
        self.seen = []
        self.closed = False
        threading.Thread(target=self._reader, daemon=True).start()
        if password:
            self.send("PASS %s" % password)
        self.send("NICK %s" % nick)
        self.send("USER %s 0 * :Test Person" % (user or nick))
        self.wait(lambda p, c, a: c == "001", 20)

    def send(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def _reader(self):
        buf = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                while b"\r\n" in buf:
                    raw, buf = buf.split(b"\r\n", 1)
                    line = raw.decode("utf-8", "replace")
                    p, c, a = parse(line)
                    if c == "PING":
                        self.send("PONG :%s" % (a[0] if a else ""))
                        continue
                    self.q.put((p, c, a, line))
        except OSError:
            pass
        self.q.put(None)

    def wait(self, pred, timeout=20):
        """The first new line (prefix, command, params, raw) matching
        pred(prefix, command, params); earlier lines are kept in seen."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("IRC %s: no matching line; last: %r"
                                     % (self.nick, self.seen[-15:]))
            try:
                item = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if item is None:
                raise AssertionError("IRC %s: connection closed; last: %r"
                                     % (self.nick, self.seen[-15:]))
            self.seen.append(item[3])
            if pred(item[0], item[1], item[2]):
                return item

    def privmsgs_from(self, nick, target=None, timeout=20):
        """Wait for one PRIVMSG from nick (to target if given): text."""
        it = self.wait(lambda p, c, a: c == "PRIVMSG" and p and
                       p.split("!")[0] == nick and
                       (target is None or a[0].lower() == target.lower()),
                       timeout)
        return it[2][1]

    def join(self, chan):
        self.send("JOIN %s" % chan)
        self.wait(lambda p, c, a: c == "366" and a[1].lower() ==
                  chan.lower())

    def oper(self):
        self.send("OPER %s %s" % (OPER_NAME, OPER_PASS))
        self.wait(lambda p, c, a: c == "381")

    def close(self):
        try:
            self.send("QUIT :bye")
        except OSError:
            pass
        self.sock.close()
