"""An OpenAI-compatible streaming upstream that holds its streams open.

For many concurrent streams (tests/bench/streams.sh, the >1,024-stream
tests): asyncio, one thread, no thread per connection. Every POST to
.../chat/completions is answered at once with the SSE headers and a role
chunk, then *held*; held streams are finished (one content chunk, a stop
chunk, [DONE], end of the chunked body, close) when they are released:

    POST /__release     release every stream held now and every later one
    POST /__hold        hold again (the default)
    GET  /__stats       {"held": n, "max_held": n, "served": n,
                         "finished": n}

With trickle_ms > 0 a held stream also gets a small content chunk every
trickle_ms (a live stream, not only an open socket). Loopback only.
Standalone: python3 holdupstream.py [--trickle-ms N] (prints the port).
"""

import asyncio
import json
import sys
import threading

ROLE = {"role": "assistant", "content": ""}
MAX_HEAD = 65536
MAX_BODY = 8 << 20


def _chunk(delta, fin=None):
    o = {"id": "chatcmpl-hold", "object": "chat.completion.chunk",
         "created": 1700000000, "model": "hold-model",
         "choices": [{"index": 0, "delta": delta, "finish_reason": fin}]}
    data = b"data: " + json.dumps(o).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


DONE = b"data: [DONE]\n\n"
END = (_chunk({"content": "held reply"}) + _chunk({}, "stop") +
       b"%x\r\n%s\r\n0\r\n\r\n" % (len(DONE), DONE))


class HoldUpstream:
    def __init__(self, host="127.0.0.1", port=0, trickle_ms=0):
        self.host, self.port = host, port
        self.trickle_ms = trickle_ms
        self.held = 0
        self.max_held = 0
        self.served = 0
        self.finished = 0
        self.loop = None
        self.release = None        # asyncio.Event, set = do not hold
        self._thread = None
        self._server = None
        self._ready = threading.Event()

    @property
    def base_url(self):
        return "http://127.0.0.1:%d/v1" % self.port

    def stats(self):
        return {"held": self.held, "max_held": self.max_held,
                "served": self.served, "finished": self.finished}

    async def _read_request(self, reader):
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            raise ValueError("head too big")
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        hdrs = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        if n > MAX_BODY:
            raise ValueError("body too big")
        return method, path, hdrs, n

    async def _serve(self, reader, writer):
        try:
            method, path, hdrs, n = await self._read_request(reader)
            if hdrs.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if n:
                await reader.readexactly(n)
            if path == "/__stats":
                body = json.dumps(self.stats()).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: "
                             b"application/json\r\nConnection: close\r\n"
                             b"Content-Length: %d\r\n\r\n%s" %
                             (len(body), body))
            elif path in ("/__release", "/__hold"):
                if path == "/__release":
                    self.release.set()
                else:
                    self.release.clear()
                writer.write(b"HTTP/1.1 204 No Content\r\nConnection: "
                             b"close\r\n\r\n")
            elif method == "POST" and path.endswith("/chat/completions"):
                await self._stream(writer)
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nConnection: "
                             b"close\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _stream(self, writer):
        self.served += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"
                     b"\r\nCache-Control: no-cache\r\nConnection: close\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + _chunk(ROLE))
        await writer.drain()
        self.held += 1
        self.max_held = max(self.max_held, self.held)
        try:
            while not self.release.is_set():
                if self.trickle_ms <= 0:
                    await self.release.wait()
                    break
                try:
                    await asyncio.wait_for(self.release.wait(),
                                           self.trickle_ms / 1000.0)
                except asyncio.TimeoutError:
                    writer.write(_chunk({"content": "."}))
                    await writer.drain()
        finally:
            self.held -= 1
        writer.write(END)
        await writer.drain()
        self.finished += 1

    async def _main(self):
        self.release = asyncio.Event()
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, backlog=4096,
            limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    def _run(self):
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._main())
        except asyncio.CancelledError:
            pass
        finally:
            self.loop.close()

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("hold upstream did not start")
        return self

    def set_release(self, on=True):
        ev = self.release
        self.loop.call_soon_threadsafe(ev.set if on else ev.clear)

    def stop(self):
        if self.loop is not None and self._server is not None:
            self.set_release(True)
            self.loop.call_soon_threadsafe(self._server.close)
        if self._thread is not None:
            self._thread.join(5)


def stream_request(token, model="openclaw"):
    body = json.dumps({"model": model, "stream": True, "messages": [
        {"role": "user", "content": "hold"}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nAuthorization: Bearer "
            b"%s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            b"%s" % (token.encode(), len(body), body))


class StreamRun:
    """n concurrent streaming requests to port: opened with at most
    `window` connects in flight (the front door counts unclassified
    sockets per address), then held until the caller's release; .status
    holds each answer's status (0: no answer), .done whether it ended
    with [DONE]. A 503 is retried up to `retries` times, 50 ms apart (a
    connection the client closed counts at the gateway until its HTTP
    thread has seen the close). Bounded by `timeout` seconds in all."""

    def __init__(self, port, n, token="T", window=32, timeout=300,
                 retries=0):
        self.port, self.n, self.window = port, n, window
        self.retries = retries
        self.req = stream_request(token)
        self.timeout = timeout
        self.status = [0] * n
        self.done = [False] * n
        self.opened = None
        self.closed = None

    async def _one(self, i, sem):
        w = None
        try:
            for attempt in range(self.retries + 1):
                if w is not None:
                    w.close()
                    await asyncio.sleep(0.05)
                async with sem:
                    r, w = await asyncio.open_connection("127.0.0.1",
                                                         self.port)
                    w.write(self.req)
                    head = await r.readuntil(b"\r\n\r\n")
                    self.status[i] = int(head.split(b" ", 2)[1])
                if self.status[i] != 503:
                    break
            self.opened.release()
            buf = b""
            while len(buf) < MAX_BODY:
                d = await r.read(65536)
                if not d:
                    break
                buf += d
            self.done[i] = b"data: [DONE]" in buf
        except (OSError, ValueError, IndexError,
                asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            if self.status[i] == 0:
                self.opened.release()
        finally:
            if w is not None:
                w.close()

    async def _all(self, on_open):
        sem = asyncio.Semaphore(self.window)
        self.opened = asyncio.Semaphore(0)
        tasks = [asyncio.ensure_future(self._one(i, sem))
                 for i in range(self.n)]
        for _ in range(self.n):
            await self.opened.acquire()
        await asyncio.get_running_loop().run_in_executor(None, on_open)
        await asyncio.gather(*tasks)

    def run(self, on_open):
        """Open all, call on_open() (in a thread) once every stream has
        its answer's head, then wait for all to end."""
        async def main():
            await asyncio.wait_for(self._all(on_open), self.timeout)
        asyncio.run(main())
        return self


def main(argv):
    trickle = 0
    if len(argv) > 2 and argv[1] == "--trickle-ms":
        trickle = int(argv[2])
    up = HoldUpstream(trickle_ms=trickle).start()
    print(up.port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    up.stop()


if __name__ == "__main__":
    main(sys.argv)
