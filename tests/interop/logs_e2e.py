#!/usr/bin/env python3
"""End-to-end test of what the server logs (docs/configuration.md, Logs), read from the
real server's stderr, once as text and once with --log-format json (where every line
must be one JSON object with time, level and msg):

- one info line when a WebSocket connects and one when it goes, with the client id, the
  address and, once connected, the user; the disconnect line says who closed and with
  which code (the peer's close frame, a kick through the HTTP API, the idle timeout, a
  drain), and nothing else is logged at info for that connection;
- one access line per HTTP API request: key name (or -), address, method, path, status
  and time taken;
- refusals that repeat (upgrades from a bad origin, while draining; API 401 and 429)
  at most one line a second per cause, each saying how many more it stands for, all of
  them accounted for once the next second's line is out.

Usage: logs_e2e.py path/to/switchboard
"""
import base64
import http.client
import json
import os
import re
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sbproc  # noqa: E402
from rawws import upgrade_request, ws_frame  # noqa: E402
from sbproc import check  # noqa: E402

BINARY = sys.argv[1] if len(sys.argv) > 1 else "build/switchboard"
KEY, LIMITED_KEY = "sk_logs_backend", "sk_logs_limited"
LETTERS = {"error": "E", "warn": "W", "info": "I", "debug": "D"}
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ([EWID]) (.*)$")


class RawWS:
    """A minimal WebSocket client over a plain socket: it answers pings only when asked
    to read, so one that never reads is a client that stopped answering."""

    def __init__(self, port, origin=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(upgrade_request(origin=origin, key=key, host=f"127.0.0.1:{port}").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else 0
        if self.status != 101:
            self.sock.close()

    def send(self, opcode, payload):
        self.sock.sendall(ws_frame(opcode, payload))

    def _take(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next frame as (opcode, payload); pings are answered and skipped."""
        while True:
            b0, b1 = self._take(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._take(8))[0]
            payload = self._take(n)
            if b0 & 0x0F == 0x9:
                self.send(0xA, payload)
                continue
            return b0 & 0x0F, payload

    def command(self, obj):
        self.send(0x1, json.dumps(obj).encode())
        while True:
            op, payload = self.recv()
            if op == 0x1:
                return json.loads(payload)
            if op == 0x8:
                raise EOFError

    def connect(self, user):
        """Sends connect as user; returns the client id."""
        reply = self.command({"type": "connect", "id": 1, "user": user})
        return reply.get("client")

    def wait_close(self, timeout=10):
        """Reads until the server's close frame (its code) or the end (None)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                op, payload = self.recv()
                if op == 0x8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        except (EOFError, OSError):
            return None

    def close(self, code, reason):
        self.send(0x8, struct.pack("!H", code) + reason.encode())
        got = self.wait_close(5)
        self.sock.close()
        return got


def records(proc, fmt):
    """The server's lines so far as (letter, msg); with json, lines that do not parse
    as one object with string time, level and msg come back as ("?", line)."""
    out = []
    for line in list(proc.log_lines):
        line = line.rstrip("\n")
        if fmt == "json":
            try:
                o = json.loads(line)
                ok = (isinstance(o, dict) and set(o) == {"time", "level", "msg"} and
                      all(isinstance(o[k], str) for k in o) and o["level"] in LETTERS)
            except ValueError:
                ok = False
            out.append((LETTERS[o["level"]], o["msg"]) if ok else ("?", line))
        else:
            m = TEXT_LINE.match(line)
            out.append((m.group(1), m.group(2)) if m else ("?", line))
    return out


def wait_for(proc, fmt, pattern, timeout=5.0):
    """The first record whose msg matches pattern (a regex), waiting up to timeout."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        for letter, msg in records(proc, fmt):
            if rx.search(msg):
                return letter, msg
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def about(proc, fmt, needle):
    """Records that mention needle at info or above."""
    return [(l, m) for l, m in records(proc, fmt) if needle in m and l in "EWI"]


def api(port, method, path, key=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def counted(proc, fmt, pattern):
    """(lines, events): the lines matching pattern and the events they stand for, each
    line itself plus its "(and N more in the last second)"."""
    lines = [m for _, m in records(proc, fmt) if re.search(pattern, m)]
    more = sum(int(x.group(1)) for m in lines
               for x in [re.search(r"\(and (\d+) more in the last second\)$", m)] if x)
    return len(lines), len(lines) + more


def rate_limited(proc, fmt, what, pattern, n, elapsed):
    """Checks that n events of one cause gave at most a line a second, and that every
    one of them is accounted for once the flush a second later is out."""
    deadline = time.monotonic() + 4
    lines, events = counted(proc, fmt, pattern)
    while events < n and time.monotonic() < deadline:
        time.sleep(0.1)
        lines, events = counted(proc, fmt, pattern)
    check(events == n, f"{fmt}: {what}: the lines stand for all {n} (got {events} in {lines} lines)")
    check(1 <= lines <= int(elapsed) + 2,
          f"{fmt}: {what}: {lines} lines for {n} in {elapsed:.1f} s (at most one a second, plus the flush)")


def connection_lines(proc, fmt, port, idle):
    # A client that connects as alice and closes with its own code.
    ws = RawWS(port)
    cid = ws.connect("alice")
    check(bool(cid), f"{fmt}: alice connected (client {cid})")
    ws.close(4000, "bye now")
    got = wait_for(proc, fmt, rf"^ws: client={re.escape(cid)} .*disconnected")
    check(got is not None and got[0] == "I", f"{fmt}: alice's disconnect is logged at info ({got})")
    if got:
        msg = got[1]
        check("addr=127.0.0.1 " in msg and "user=alice " in msg,
              f"{fmt}: the disconnect line has the address and the user: {msg}")
        check(msg.endswith("closed by the peer: 4000 bye now"),
              f"{fmt}: it says the peer closed, with its code and reason: {msg}")
        check(re.search(r"disconnected after \d+\.\d s,", msg) is not None,
              f"{fmt}: and how long the connection lasted: {msg}")
    got = wait_for(proc, fmt, rf"^ws: client={re.escape(cid)} addr=127\.0\.0\.1 connected$", 1)
    check(got is not None and got[0] == "I", f"{fmt}: alice's connect is logged at info ({got})")
    lines = about(proc, fmt, f"client={cid} ")
    check(len(lines) == 2, f"{fmt}: two lines at info for alice's connection (got {lines})")

    # bob is disconnected through the HTTP API: the server's close code and reason.
    ws = RawWS(port)
    bob = ws.connect("bob")
    status = api(port, "DELETE", f"/api/v1/clients/{bob}", KEY)
    check(status == 200, f"{fmt}: DELETE /api/v1/clients/{bob} answered {status}")
    check(ws.wait_close() == 4003, f"{fmt}: bob got 4003")
    ws.sock.close()
    got = wait_for(proc, fmt, rf"^ws: client={re.escape(bob)} .*disconnected")
    check(got is not None and "user=bob " in got[1] and
          got[1].endswith("closed by the server: 4003 disconnected by the server"),
          f"{fmt}: bob's disconnect names the server's close ({got})")
    check(len(about(proc, fmt, f"client={bob} ")) == 2,
          f"{fmt}: two lines at info for bob's connection ({about(proc, fmt, f'client={bob} ')})")
    got = wait_for(proc, fmt, rf"^api: key=backend addr=127\.0\.0\.1 DELETE /api/v1/clients/{re.escape(bob)} 200 \d+\.\d ms$", 1)
    check(got is not None and got[0] == "I", f"{fmt}: the DELETE has its access line at info ({got})")

    # A client that never closes its socket cleanly: the end without a close frame.
    ws = RawWS(port)
    dan = ws.connect("dan")
    ws.sock.close()
    got = wait_for(proc, fmt, rf"^ws: client={re.escape(dan)} .*disconnected")
    check(got is not None and got[1].endswith("lost: the connection ended without a close frame"),
          f"{fmt}: dan's dropped socket is a lost connection ({got})")

    if not idle:
        return
    # carol connects and then never reads again: no pongs, dropped after idle_timeout.
    ws = RawWS(port)
    carol = ws.connect("carol")
    got = wait_for(proc, fmt, rf"^ws: client={re.escape(carol)} .*disconnected", 8)
    check(got is not None and "user=carol " in got[1] and
          got[1].endswith("dropped: idle timeout (nothing received for 2 s)"),
          f"{fmt}: carol is dropped for the idle timeout ({got})")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    conn.close()
    check("\nswitchboard_idle_timeouts_total 1\n" in body,
          f"{fmt}: /metrics counts one idle timeout "
          f"({[l for l in body.splitlines() if 'idle' in l]})")
    ws.sock.close()


def access_lines(proc, fmt, port):
    status = api(port, "GET", "/api/v1/channels", KEY)
    check(status == 200, f"{fmt}: GET /api/v1/channels answered {status}")
    got = wait_for(proc, fmt, r"^api: key=backend addr=127\.0\.0\.1 GET /api/v1/channels 200 \d+\.\d ms$")
    check(got is not None and got[0] == "I", f"{fmt}: its access line ({got})")
    status = api(port, "POST", "/api/v1/channels/room:a/messages", KEY, {"data": {"n": 1}})
    check(status == 201, f"{fmt}: POST .../messages answered {status}")
    got = wait_for(proc, fmt, r"^api: key=backend addr=127\.0\.0\.1 POST /api/v1/channels/room:a/messages 201 \d+\.\d ms$")
    check(got is not None, f"{fmt}: a POST's access line, written after its body ({got})")
    status = api(port, "GET", "/api/v1/nothing")
    got = wait_for(proc, fmt, r"^api: key=- addr=127\.0\.0\.1 GET /api/v1/nothing 404 \d+\.\d ms$")
    check(status == 404 and got is not None, f"{fmt}: no key, no route: key=- and 404 ({status}, {got})")
    # Bytes of the decoded path that a terminal or a JSON parser would choke on are
    # logged as '?' (an escape sequence, a byte that is not UTF-8); lws itself ends the
    # path at a decoded newline, so none can start a line of its own.
    api(port, "GET", "/api/v1/x%1B%5B31my%FFz")
    got = wait_for(proc, fmt, r"^api: key=- addr=127\.0\.0\.1 GET /api/v1/x\?\[31my\?z 404")
    check(got is not None, f"{fmt}: control bytes and invalid UTF-8 in the path are logged as '?' ({got})")
    api(port, "GET", "/api/v1/x%0AE%20forged")
    check(wait_for(proc, fmt, r"^api: key=- addr=127\.0\.0\.1 GET /api/v1/x 404", 2) is not None,
          f"{fmt}: a path with an encoded newline has its access line")
    check(not any("forged" in m for _, m in records(proc, fmt)), f"{fmt}: and no forged line")


def refusals(proc, fmt, port):
    # 401: no key, 40 times as fast as the socket allows.
    t0 = time.monotonic()
    statuses = {api(port, "GET", "/api/v1/channels") for _ in range(40)}
    check(statuses == {401}, f"{fmt}: 40 requests without a key: {statuses}")
    rate_limited(proc, fmt, "401", r"^api: key=- addr=127\.0\.0\.1 GET /api/v1/channels 401 ", 40,
                 time.monotonic() - t0)
    # 429: the limited key has a burst of 1 and one request a minute.
    t0 = time.monotonic()
    statuses = [api(port, "GET", "/api/v1/channels", LIMITED_KEY) for _ in range(30)]
    check(statuses[0] == 200 and set(statuses[1:]) == {429},
          f"{fmt}: the limited key: one 200, then 429 ({sorted(set(statuses))})")
    rate_limited(proc, fmt, "429", r"^api: key=limited addr=127\.0\.0\.1 GET /api/v1/channels 429 ",
                 29, time.monotonic() - t0)
    # Upgrades from an origin not in allowed_origins.
    t0 = time.monotonic()
    statuses = {RawWS(port, origin="https://evil.example").status for _ in range(25)}
    check(statuses == {403}, f"{fmt}: 25 upgrades from a bad origin: {statuses}")
    rate_limited(proc, fmt, "origin", r"^ws: refusing upgrade from 127\.0\.0\.1: origin "
                 r"https://evil\.example not in allowed_origins", 25, time.monotonic() - t0)
    ok = RawWS(port, origin="https://ok.example")
    check(ok.status == 101, f"{fmt}: the allowed origin upgrades ({ok.status})")
    ok.sock.close()
    if fmt != "text":
        return
    # limits.max_connections_per_ip (3), then limits.connection_rate_per_ip (burst 6,
    # spent by the upgrades of this run).
    held = [RawWS(port) for _ in range(3)]
    check(all(w.status == 101 for w in held), f"{fmt}: three connections from 127.0.0.1")
    t0 = time.monotonic()
    statuses = {RawWS(port).status for _ in range(20)}
    check(statuses == {503}, f"{fmt}: 20 upgrades past max_connections_per_ip: {statuses}")
    rate_limited(proc, fmt, "per-address limit", r"^ws: refusing upgrade from 127\.0\.0\.1: "
                 r"limits\.max_connections_per_ip reached", 20, time.monotonic() - t0)
    for w in held:
        w.sock.close()
    time.sleep(0.2)
    t0 = time.monotonic()
    statuses = []
    for _ in range(20):
        w = RawWS(port)
        statuses.append(w.status)
        if w.status == 101:
            w.sock.close()
            time.sleep(0.05)  # its slot is free again before the next one
    refused = statuses.count(429)
    check(refused >= 10 and set(statuses) == {101, 429},
          f"{fmt}: upgrades past the rate are refused 429 ({statuses})")
    rate_limited(proc, fmt, "per-address rate", r"^ws: refusing upgrade from 127\.0\.0\.1: "
                 r"limits\.connection_rate_per_ip reached", refused, time.monotonic() - t0)


def draining(proc, fmt, port):
    """SIGTERM with drain_period 3 and one client left: upgrades are refused meanwhile,
    and the client's close at the end of the drain is logged."""
    ws = RawWS(port)
    eve = ws.connect("eve")
    proc.send_signal(signal.SIGTERM)
    check(wait_for(proc, fmt, r"^server: signal 15, draining") is not None, f"{fmt}: the drain began")
    t0 = time.monotonic()
    statuses = {RawWS(port).status for _ in range(15)}
    check(statuses == {503}, f"{fmt}: 15 upgrades while draining: {statuses}")
    rate_limited(proc, fmt, "draining", r"^ws: refusing upgrade from 127\.0\.0\.1: draining", 15,
                 time.monotonic() - t0)
    code = ws.wait_close(10)
    ws.sock.close()
    check(code == 4012, f"{fmt}: eve is closed by the drain ({code})")
    got = wait_for(proc, fmt, rf"^ws: client={re.escape(eve)} .*disconnected")
    check(got is not None and got[1].endswith("closed by the server: 4012 server restart"),
          f"{fmt}: eve's disconnect names the drain ({got})")
    try:
        rc = proc.wait(timeout=15)
    except Exception:
        proc.kill()
        rc = "killed"
    check(rc == 0, f"{fmt}: the server exits 0 after the drain ({rc})")


def run(fmt):
    config = {
        "api_keys": [
            {"name": "backend", "key": KEY, "channels": ["*"]},
            {"name": "limited", "key": LIMITED_KEY, "channels": ["*"],
             "quota": {"per_minute": 1, "burst": 1}},
        ],
        "allowed_origins": ["https://ok.example"],
        "namespaces": {"room": {"publish": "subscribers"}},
    }
    if fmt == "text":
        # Short liveness timings for the idle drop (the json run drains for 3 s instead,
        # with a client that must not be dropped meanwhile).
        config["websocket"] = {"ping_interval": 1, "idle_timeout": 2}
        config["limits"] = {"max_connections_per_ip": 3,
                            "connection_rate_per_ip": {"per_second": 1, "burst": 6}}
        proc, port = sbproc.start(BINARY, config)
    else:
        config["drain_period"] = 3
        proc, port = sbproc.start(BINARY, config, args=["--log-format", "json"])
    try:
        connection_lines(proc, fmt, port, idle=fmt == "text")
        access_lines(proc, fmt, port)
        refusals(proc, fmt, port)
        if fmt == "json":
            draining(proc, fmt, port)
    finally:
        if proc.poll() is None:
            sbproc.stop(proc)
    time.sleep(0.2)  # the reader thread takes the last lines
    bad = [m for l, m in records(proc, fmt) if l == "?"]
    check(not bad, f"{fmt}: every line is a well-formed {fmt} record ({bad[:3]})")
    print(f"     {fmt}: {len(proc.log_lines)} lines, e.g. {proc.log_lines[0].strip() if proc.log_lines else ''}",
          flush=True)


def main():
    run("text")
    run("json")
    return sbproc.summary()


if __name__ == "__main__":
    sys.exit(main())
