"""nginx (Debian's nginx-light) as a TLS upstream on loopback, for the
https upstream tests (test_upstream_https.py) and tests/bench/streams.sh
(STREAMS_TLS=1).

make_pki(dir) makes a throwaway CA and a server certificate for
127.0.0.1 (IP SAN) with the openssl CLI; TlsNginx(dir, pki, locations)
starts nginx with TLS (and HTTP/2 unless http2=False) on a free loopback
port serving the given location blocks, with an access log of
"$server_protocol $connection $request_uri $status" per request
(.log_lines()). Every wait is bounded; stop() ends nginx.
"""

import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import time

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx"
                                  if os.path.exists("/usr/sbin/nginx")
                                  else None)
OPENSSL = shutil.which("openssl")

# A fixed chat completion and a fixed SSE stream (the same answers as
# tests/bench/openai-overhead.sh's mock upstream).
_CHUNK = ('{"id":"c","object":"chat.completion.chunk","created":1,'
          '"model":"mock","choices":[{"index":0,')
JSON_REPLY = ('{"id":"chatcmpl-mock","object":"chat.completion",'
              '"created":1,"model":"mock","choices":[{"index":0,'
              '"message":{"role":"assistant","content":'
              '"Hello from the mock."},"finish_reason":"stop"}],'
              '"usage":{"prompt_tokens":9,"completion_tokens":5,'
              '"total_tokens":14}}')
SSE_REPLY = ('data: ' + _CHUNK + '"delta":{"role":"assistant"},'
             '"finish_reason":null}]}\\n\\n'
             'data: ' + _CHUNK + '"delta":{"content":"Hello"},'
             '"finish_reason":null}]}\\n\\n'
             'data: ' + _CHUNK + '"delta":{"content":" from the mock."},'
             '"finish_reason":"stop"}]}\\n\\n'
             'data: [DONE]\\n\\n')

MOCK_LOCATIONS = """
    location = /json/v1/chat/completions {
      default_type application/json;
      return 200 '%s';
    }
    location = /sse/v1/chat/completions {
      default_type text/event-stream;
      return 200 '%s';
    }
""" % (JSON_REPLY, SSE_REPLY)


def proxy_location(prefix, port):
    """A location passing prefix... to a plain-HTTP/1.1 upstream on
    127.0.0.1:port, unbuffered (SSE) and without a read timeout that a
    held stream would hit."""
    return """
    location %s {
      proxy_pass http://127.0.0.1:%d/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
""" % (prefix, port)


def available():
    """None when nginx and openssl are present, else why not."""
    if not NGINX:
        return "nginx not installed (Debian nginx-light)"
    if not OPENSSL:
        return "openssl CLI not installed"
    return None


def _openssl(*args, cwd):
    subprocess.run([OPENSSL] + list(args), cwd=cwd, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


def make_pki(d):
    """A CA (ca.pem) and a server key/cert for 127.0.0.1 signed by it
    (srv.key, srv.pem) in d; returns {"ca", "key", "cert"} paths."""
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=clawgate test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", *ec, "-keyout", "srv.key", "-out", "srv.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    with open(os.path.join(d, "srv.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem",
             "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem",
             "-days", "2", "-extfile", "srv.ext", cwd=d)
    return {"ca": os.path.join(d, "ca.pem"),
            "key": os.path.join(d, "srv.key"),
            "cert": os.path.join(d, "srv.pem")}


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class TlsNginx:
    def __init__(self, d, pki, locations, http2=True, connections=1024,
                 streams=128, access_log=True):
        self.dir = d
        self.pki = pki
        self.locations = locations
        self.http2 = http2
        self.connections = connections
        self.streams = streams
        self.port = None
        self.proc = None
        self.log = os.path.join(d, "access.log")
        self.access_log = access_log

    def url(self, prefix=""):
        return "https://127.0.0.1:%d%s" % (self.port, prefix)

    def _conf(self):
        return """
worker_processes 1;
daemon off;
master_process off;
worker_rlimit_nofile %(fds)d;
error_log %(d)s/error.log warn;
pid %(d)s/nginx.pid;
events { worker_connections %(conns)d; }
http {
  log_format proto '$server_protocol $connection $request_uri $status';
  access_log %(log)s;
  client_body_temp_path %(d)s/body;
  proxy_temp_path %(d)s/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  http2_max_concurrent_streams %(streams)d;
  server {
    listen 127.0.0.1:%(port)d ssl%(h2)s backlog=4096;
    ssl_certificate %(cert)s;
    ssl_certificate_key %(key)s;
%(locs)s
  }
}
""" % {"d": self.dir, "port": self.port,
       "h2": " http2" if self.http2 else "", "cert": self.pki["cert"],
       "key": self.pki["key"], "locs": self.locations,
       "log": (self.log + " proto") if self.access_log else "off",
       "conns": self.connections,
       "fds": min(self.connections * 2 + 64,
                  resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
       "streams": self.streams}

    def start(self, timeout=20):
        os.makedirs(self.dir, exist_ok=True)
        ctx = ssl.create_default_context(cafile=self.pki["ca"])
        for _ in range(5):     # a free port may be taken before nginx binds
            self.port = freeport()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(self._conf())
            out = open(os.path.join(self.dir, "out.log"), "wb")
            self.proc = subprocess.Popen(
                [NGINX, "-p", self.dir, "-c", conf],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            out.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port),
                                                  1) as s:
                        with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                            return self
                except OSError:
                    time.sleep(0.02)
            self.stop()
        with open(os.path.join(self.dir, "out.log")) as f:
            raise RuntimeError("nginx did not start: " + f.read())

    def log_lines(self):
        """[(protocol, connection id, uri, status)] of the requests
        nginx logged so far."""
        try:
            with open(self.log) as f:
                return [tuple(ln.split()) for ln in f if ln.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
