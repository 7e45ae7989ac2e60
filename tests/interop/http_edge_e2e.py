#!/usr/bin/python3
"""The HTTP edge and the WebSocket framing of the real server, checked against the
specification with raw sockets, http.client/urllib and Python websockets:

  A  HTTP keep-alive: 1,000 POSTs on one reused http.client connection (reconnecting
     only when a response says `Connection: close`), a GET after a POST, all 1,000
     messages delivered in order to a subscriber
  B  malformed percent-encoding in an /api/v1 path or query: 400 bad_request in JSON
  C  refusals before the upgrade (403 origin, 503 per address, 429 rate, 404 path) are
     HTTP/1.1 with a JSON error; 426 for GET /ws without Upgrade; HEAD /healthz; /readyz
  D  a 1 MB body over limits.max_http_body: the client reads the 413, no reset
  E  RFC 6455 violations (bad close payloads and codes) close with 1002/1007, and the
     server goes on serving; an unmasked frame is served (a known deviation)
  F  DELETE of a channel's history sends a `reset` frame with the new epoch
  G  SIGHUP reloads the configuration file (new api key), keeps the old one on an
     invalid file, and keeps connections open
  H  graceful drain: SIGTERM with drain_period closes clients with 4012 spread over the
     period, /readyz 503, upgrades 503; a second SIGTERM ends it at once

Every part starts its own server, is bounded in time, and reports its own failures; the
exit status is 1 if any check failed.

usage: http_edge_e2e.py PATH/TO/switchboard [PART LETTER ...]   (e.g. `... A C`: only those)
"""
import asyncio
import base64
import http.client
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import websockets

import sbproc
from rawws import upgrade_request, ws_frame
from sbproc import check, kill_if_running, stop

BINARY = sys.argv[1]
KEY = "sk_spec_1"
KEY2 = "sk_spec_2"
# quotas that 1,000 requests in a row do not reach
BIG_QUOTA = {"per_minute": 1000000, "burst": 1000000}
API_KEYS = [{"name": "spec", "key": KEY, "quota": BIG_QUOTA}]
DRAIN_PERIOD = 2


# --- HTTP over raw sockets -------------------------------------------------------------

class Response:
    """A parsed HTTP response: line (bytes), status (int, 0 if not HTTP), headers (lower
    case names), body (bytes), error (the exception that cut the read short, or None)."""

    def __init__(self):
        self.line, self.status, self.headers, self.body, self.error = b"", 0, {}, b"", None

    def json_error(self):
        try:
            err = json.loads(self.body).get("error")
        except (ValueError, AttributeError):
            return None
        return err if isinstance(err, dict) else None


def read_until(sock, buf, enough, deadline):
    """Reads from sock onto buf until enough(buf), EOF or the deadline: (buf, the error
    that stopped it or None)."""
    try:
        while not enough(buf) and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError as e:
        return buf, e
    return buf, None


def read_response(sock, head=False, timeout=5.0):
    """Reads one response from sock: the head, then the body by Content-Length (none for
    HEAD and 1xx/204/304; until EOF when there is no Content-Length)."""
    r = Response()
    deadline = time.monotonic() + timeout
    buf, r.error = read_until(sock, b"", lambda b: b"\r\n\r\n" in b or len(b) >= 65536, deadline)
    head_part, _, rest = buf.partition(b"\r\n\r\n")
    lines = head_part.split(b"\r\n")
    r.line = lines[0]
    m = re.match(rb"HTTP/1\.[01] (\d{3})", r.line)
    r.status = int(m.group(1)) if m else 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        r.headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    if head or r.status < 200 or r.status in (204, 304) or r.error is not None:
        r.body = rest
        return r
    want = r.headers.get("content-length")
    want = int(want) if want is not None and want.isdigit() else None
    rest, r.error = read_until(sock, rest, lambda b: want is not None and len(b) >= want, deadline)
    r.body = rest if want is None else rest[:want]
    return r


def exchange(sock, request, head=False):
    """Sends request (str or bytes) on sock and reads one response (a connection error
    is the Response's error)."""
    try:
        sock.sendall(request.encode() if isinstance(request, str) else request)
        return read_response(sock, head=head)
    except OSError as e:
        r = Response()
        r.error = e
        return r


def raw_http(port, request, head=False):
    """One request on a new connection: its Response."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            return exchange(s, request, head)
    except OSError as e:
        r = Response()
        r.error = e
        return r


def api_request(method, path, body=None, key=KEY):
    req = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
    if body is not None:
        req += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    else:
        req += "\r\n"
    return req


def json_error_problems(r, status, code=None, retry_after=False):
    """What is wrong with r as an HTTP/1.1 `status` answer with a JSON error body."""
    p = []
    if r.error is not None:
        p.append(f"read error {type(r.error).__name__}: {r.error}")
        if not r.line:
            return p
    if not r.line.startswith(b"HTTP/1.1 "):
        p.append(f"status line is not HTTP/1.1 ({r.line[:40]!r})")
    if r.status != status:
        p.append(f"status {r.status}, not {status}")
    ctype = r.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        p.append(f"Content-Type {ctype!r}, not application/json")
    err = r.json_error()
    if err is None or not isinstance(err.get("code"), str) or not isinstance(err.get("message"), str):
        p.append(f"body is not {{\"error\":{{\"code\":..,\"message\":..}}}} ({r.body[:50]!r})")
    elif code is not None and err["code"] != code:
        p.append(f"error.code {err['code']!r}, not {code!r}")
    if retry_after and not r.headers.get("retry-after", "").isdigit():
        p.append(f"no Retry-After in seconds ({r.headers.get('retry-after')!r})")
    return p


def check_json_error(r, status, what, code=None, retry_after=False):
    p = json_error_problems(r, status, code, retry_after)
    check(not p, f"{what} -> HTTP/1.1 {status} with a JSON error" + (": " + "; ".join(p) if p else ""))


def describe_end(r):
    """What a request that got no status line met instead."""
    if r.error is not None:
        return f"{type(r.error).__name__}: {r.error}"
    return f"{r.line[:40]!r}" if r.line else "no response, the connection was closed"


def http_conn(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=5)


def post_message(conn, channel, data, key=KEY):
    """POST /api/v1/channels/<channel>/messages on conn; returns (status, response, body)."""
    conn.request("POST", f"/api/v1/channels/{channel}/messages", body=json.dumps({"data": data}),
                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp, resp.read()


def announces_close(resp):
    return "close" in (resp.getheader("Connection") or "").lower()


def api_once(port, method, path, body=None, key=KEY):
    """One request on a fresh connection: (status, parsed JSON or None). Connection
    errors come back as status 0."""
    conn = http_conn(port)
    try:
        conn.request(method, path, body=body,
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, None
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        conn.close()


# --- WebSocket helpers -----------------------------------------------------------------

def ws_url(port, path="/ws"):
    return f"ws://127.0.0.1:{port}{path}"


async def ws_client(port, user, channel=None):
    """A websockets connection that has sent connect (and subscribe to channel)."""
    ws = await websockets.connect(ws_url(port), open_timeout=5, max_queue=None)
    await ws.send(json.dumps({"type": "connect", "id": 1, "user": user}))
    await reply(ws, 1)
    if channel is not None:
        sub = await reply(ws, 2, {"type": "subscribe", "id": 2, "channel": channel})
        if sub.get("type") != "subscribed":
            raise RuntimeError(f"subscribe {channel} refused: {sub}")
    return ws


async def reply(ws, rid, frame=None, timeout=5):
    """Sends frame (if any) and returns the first frame with id rid."""
    if frame is not None:
        await ws.send(json.dumps(frame))
    deadline = time.monotonic() + timeout
    while True:
        f = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if f.get("id") == rid:
            return f


async def serves(port, channel):
    """True when a fresh client can connect, subscribe, publish and get its message."""
    try:
        ws = await ws_client(port, "alive", channel)
        try:
            await ws.send(json.dumps({"type": "publish", "id": 3, "channel": channel, "data": {"alive": 1}}))
            for _ in range(10):
                f = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if f.get("type") == "message" and f.get("data") == {"alive": 1}:
                    return True
            return False
        finally:
            await ws.close()
    except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException, RuntimeError):
        return False


def status_of(exc):
    """The HTTP status a websockets handshake exception carries (None if it has none):
    InvalidStatus.response.status_code (websockets >= 11) or InvalidStatusCode.status_code."""
    resp = getattr(exc, "response", None)
    if resp is not None and getattr(resp, "status_code", None) is not None:
        return resp.status_code
    return getattr(exc, "status_code", None)


async def websockets_refusal(port, path="/ws", origin=None):
    """Connects with websockets expecting a refusal: the status it reports, 101 if the
    connection opened, or a description of the error that carried no status."""
    try:
        ws = await websockets.connect(ws_url(port, path), origin=origin, open_timeout=5)
    except websockets.exceptions.InvalidHandshake as e:
        s = status_of(e)
        return s if s is not None else f"{type(e).__name__}: {e}"
    except (OSError, asyncio.TimeoutError) as e:
        return f"{type(e).__name__}: {e}"
    await ws.close()
    return 101


def exit_text(rc):
    if rc is None:
        return "running"
    return f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"


def start(config):
    return sbproc.start(BINARY, config)


def run_with(config, coro_fn, timeout, then=None):
    """Starts a server with config, runs coro_fn(port) within timeout seconds (then
    then(port), if given), and stops the server."""
    proc, port = start(config)
    try:
        asyncio.run(asyncio.wait_for(coro_fn(port), timeout))
        if then is not None:
            then(port)
    finally:
        stop(proc)


def start_file(path):
    """Starts the server with the configuration file at path (which stays, for SIGHUP);
    returns (process, port). Raises RuntimeError with the server's words if it does not
    start. The process's log_lines collects its log."""
    proc = subprocess.Popen([BINARY, "--config", path, "--host", "127.0.0.1", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    said = []
    for _ in range(50):
        line = proc.stderr.readline()
        if not line:
            break
        said.append(line)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            proc.log_lines = said
            threading.Thread(target=lambda: [said.append(x) for x in proc.stderr], daemon=True).start()
            return proc, int(m.group(1))
    proc.kill()
    proc.wait()
    raise RuntimeError(f"server did not start with {path} (exit {proc.returncode}): {''.join(said).strip()}")


def run_with_file(config, coro_fn, timeout, end):
    """Writes config to a file that stays while the server runs on it, runs
    coro_fn(proc, port, path) within timeout seconds, then end(proc); removes the file."""
    fd, path = tempfile.mkstemp(suffix=".json", prefix="sb-spec-")
    os.close(fd)
    write_config(path, config)
    try:
        proc, port = start_file(path)
        try:
            asyncio.run(asyncio.wait_for(coro_fn(proc, port, path), timeout))
        finally:
            end(proc)
    finally:
        os.unlink(path)


def write_config(path, config):
    with open(path + ".tmp", "w") as f:
        f.write(config if isinstance(config, str) else json.dumps(config))
    os.replace(path + ".tmp", path)


# --- A: HTTP keep-alive ----------------------------------------------------------------

N_POSTS = 1000


def post_many(port, channel, n):
    """n POSTs on one http.client connection, reconnecting only after a response that
    says Connection: close. Returns (statuses != 201, connection errors, reconnects)."""
    conn = http_conn(port)
    bad, errors, reconnects = [], [], 0
    deadline = time.monotonic() + 60
    for i in range(1, n + 1):
        if time.monotonic() > deadline:
            errors.append(f"out of time at request {i}")
            break
        try:
            status, resp, body = post_message(conn, channel, {"i": i})
            if status != 201:
                bad.append((i, status, body[:80]))
            if announces_close(resp):
                conn.close()
                conn = http_conn(port)
                reconnects += 1
        except (OSError, http.client.HTTPException) as e:
            errors.append(f"request {i}: {type(e).__name__}: {e}")
            conn.close()
            conn = http_conn(port)
    conn.close()
    return bad, errors, reconnects


async def keepalive_publish(port):
    channel = "ka:py"
    ws = await ws_client(port, "counter", channel)
    offsets = []

    async def count():
        while len(offsets) < N_POSTS:
            f = json.loads(await ws.recv())
            if f.get("type") == "message" and f.get("channel") == channel:
                offsets.append(f["offset"])

    counter = asyncio.create_task(count())
    bad, errors, reconnects = await asyncio.to_thread(post_many, port, channel, N_POSTS)
    try:
        await asyncio.wait_for(counter, 10)
    except asyncio.TimeoutError:
        pass
    await ws.close()
    print(f"     {reconnects} reconnects after Connection: close", flush=True)
    check(not errors, f"A: {N_POSTS} keep-alive POSTs without a connection error "
          f"({len(errors)} errors{', first: ' + errors[0] if errors else ''})")
    check(not bad, f"A: every POST answered 201 ({len(bad)} others{', first: ' + str(bad[0]) if bad else ''})")
    wrong = next((i for i, o in enumerate(offsets) if o != i + 1), None)
    check(len(offsets) == N_POSTS and wrong is None,
          f"A: the subscriber got offsets 1..{N_POSTS} in order (got {len(offsets)} messages, "
          f"{'in order' if wrong is None else f'offset {offsets[wrong]} at position {wrong + 1}'})")


def get_after_post(port):
    # http.client: POST then GET on the same connection object
    conn = http_conn(port)
    try:
        status, resp, _ = post_message(conn, "ka:get", {"x": 1})
        if announces_close(resp):
            conn.close()
            conn = http_conn(port)
        conn.request("GET", "/api/v1/channels/ka:get/messages", headers={"Authorization": f"Bearer {KEY}"})
        got = conn.getresponse()
        body = got.read()
        check(status == 201 and got.status == 200 and b'"offset":1' in body,
              f"A: http.client GET after a POST on the same connection works (POST {status}, GET {got.status})")
    except (OSError, http.client.HTTPException) as e:
        check(False, f"A: http.client GET after a POST on the same connection: {type(e).__name__}: {e}")
    finally:
        conn.close()

    # raw socket: a POST response either says Connection: close (and closes) or the
    # connection serves the next request
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        r = exchange(s, api_request("POST", "/api/v1/channels/ka:get/messages", '{"data":2}'))
        closes = "close" in r.headers.get("connection", "").lower()
        if closes:
            try:
                s.settimeout(2)
                eof = s.recv(1) == b""
            except OSError:
                eof = True
            check(r.status == 201 and eof, f"A: a POST answered with Connection: close is closed (status {r.status})")
        else:
            g = exchange(s, api_request("GET", "/api/v1/channels/ka:get"))
            check(r.status == 201 and g.status == 200,
                  f"A: a POST answered without Connection: close keeps the connection for a GET "
                  f"(POST {r.status}, then GET {g.status or describe_end(g) + ': a close must be announced'})")
    # two GETs on one connection (GET keeps the connection alive)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        r1 = exchange(s, api_request("GET", "/api/v1/channels/ka:get"))
        r2 = exchange(s, api_request("GET", "/api/v1/channels/ka:get"))
        check(r1.status == 200 and r2.status == 200,
              f"A: two GETs on one connection both answer 200 ({r1.status}, {r2.status or describe_end(r2)})")


def part_a():
    run_with({"api_keys": API_KEYS}, keepalive_publish, 120, then=get_after_post)


# --- B: malformed percent-encoding -----------------------------------------------------

def part_b():
    proc, port = start({"api_keys": API_KEYS})
    try:
        for path in ["/api/v1/channels/chat%zz", "/api/v1/channels/chat%zz/messages",
                     "/api/v1/channels/chat%", "/api/v1/channels/chat%4/messages",
                     "/api/v1/channels/chat%4"]:
            check_json_error(raw_http(port, api_request("GET", path)), 400, f"B: GET {path}", "bad_request")
        check_json_error(raw_http(port, api_request("POST", "/api/v1/channels/a%zzb/messages", '{"data":1}')),
                         400, "B: POST /api/v1/channels/a%zzb/messages", "bad_request")
        check_json_error(raw_http(port, api_request("DELETE", "/api/v1/users/al%zz")),
                         400, "B: DELETE /api/v1/users/al%zz", "bad_request")
        for q in ["%zz", "%", "%4"]:
            path = f"/api/v1/channels/chat:b/messages?limit={q}"
            check_json_error(raw_http(port, api_request("GET", path)), 400, f"B: GET {path}", "bad_request")
        r = raw_http(port, api_request("GET", "/api/v1/channels/chat%3Ab/messages?limit=5"))
        check(r.status == 200, f"B: a well-formed %3A in the path still works (got {r.status})")
    finally:
        stop(proc)


# --- C: refusals before the upgrade ----------------------------------------------------

async def refusals(port):
    r = raw_http(port, upgrade_request(origin="https://app.example"))
    check(r.status == 101, f"C: an allowed origin upgrades (got {r.status})")
    check_json_error(raw_http(port, upgrade_request(origin="https://evil.example")), 403,
                     "C: raw upgrade from an origin not allowed")
    got = await websockets_refusal(port, origin="https://evil.example")
    check(got == 403, f"C: websockets sees 403 for an origin not allowed (got {got})")

    check_json_error(raw_http(port, upgrade_request(path="/nope")), 404, "C: raw upgrade on /nope")
    got = await websockets_refusal(port, path="/nope")
    check(got == 404, f"C: websockets sees 404 on /nope (got {got})")

    await asyncio.sleep(0.3)  # the server lets go of the connections above
    held = [await websockets.connect(ws_url(port), open_timeout=5) for _ in range(3)]
    try:
        check_json_error(raw_http(port, upgrade_request()), 503,
                         "C: raw 4th upgrade from one address (max_connections_per_ip 3)", retry_after=True)
        got = await websockets_refusal(port)
        check(got == 503, f"C: websockets sees 503 past max_connections_per_ip (got {got})")
    finally:
        for ws in held:
            await ws.close()

    r = raw_http(port, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check_json_error(r, 426, "C: GET /ws without Upgrade")
    check(r.headers.get("upgrade", "").lower() == "websocket",
          f"C: the 426 says Upgrade: websocket (got {r.headers.get('upgrade')!r})")

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        r = read_response(s, head=True, timeout=3)
        extra = r.body
        try:
            s.settimeout(0.3)
            extra += s.recv(4096)
        except OSError:
            pass
        check(r.line.startswith(b"HTTP/1.1 200") and extra == b"",
              f"C: HEAD /healthz answers 200 with no body (got {r.line!r}, {len(extra)} body bytes)")

    r = raw_http(port, "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check(r.status == 200, f"C: GET /readyz answers 200 while running (got {r.status or describe_end(r)})")


async def rate_refusals(port):
    codes = [raw_http(port, upgrade_request()).status for _ in range(2)]
    r = raw_http(port, upgrade_request())
    check(codes == [101, 101], f"C: the first 2 upgrades of a burst of 2 succeed ({codes})")
    check_json_error(r, 429, "C: raw 3rd upgrade within a second (connection_rate_per_ip 1/s, burst 2)",
                     retry_after=True)
    got = await websockets_refusal(port)
    check(got == 429, f"C: websockets sees 429 past connection_rate_per_ip (got {got})")


def part_c():
    run_with({"allowed_origins": ["https://app.example"], "limits": {"max_connections_per_ip": 3}}, refusals, 60)
    run_with({"limits": {"connection_rate_per_ip": {"per_second": 1, "burst": 2}}}, rate_refusals, 30)


# --- D: an oversized body --------------------------------------------------------------

BIG = 1048576


def send_big_reading(port):
    """POSTs a 1 MB body on a raw socket, reading while it sends and ignoring EPIPE and
    ECONNRESET on send; returns (everything read, the error that ended reading or None,
    bytes sent)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall((f"POST /api/v1/channels/d/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {BIG}\r\n\r\n").encode())
    s.setblocking(False)
    chunk = b'{"data":"' + b"x" * 65536
    sent, got, err, sending, eof = 0, b"", None, True, False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not eof and (sending or b"\r\n\r\n" not in got or len(got) < 200):
        r, w, _ = select.select([s], [s] if sending else [], [], 0.2)
        if r:
            try:
                data = s.recv(65536)
                eof = data == b""
                got += data
            except BlockingIOError:
                pass
            except OSError as e:
                err = e
                break
        if w and sending:
            try:
                sent += s.send(chunk[: min(len(chunk), BIG - sent)])
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                sending = False
            sending = sending and sent < BIG
        if not r and not sending and b"\r\n\r\n" in got:
            # the head is in; wait a little more for the body, then stop
            ready, _, _ = select.select([s], [], [], 1.0)
            if not ready:
                break
    s.close()
    return got, err, sent


def part_d():
    proc, port = start({"api_keys": API_KEYS, "limits": {"max_http_body": 1024}})
    try:
        got, err, sent = send_big_reading(port)
        head, _, body = got.partition(b"\r\n\r\n")
        try:
            code = json.loads(body).get("error", {}).get("code")
        except ValueError:
            code = None
        check(head.startswith(b"HTTP/1.1 413") and code == "too_large",
              f"D: raw 1 MB POST (max_http_body 1024) reads the 413 with its JSON body "
              f"(read {len(got)} bytes: {head[:30]!r}, error.code {code!r}, {sent} body bytes sent"
              f"{', then ' + type(err).__name__ if err else ''})")

        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/channels/d/messages",
                                     data=b'{"data":"' + b"y" * (BIG - 11) + b'"}', method="POST",
                                     headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                outcome = f"status {resp.status}"
        except urllib.error.HTTPError as e:
            outcome = e.code
        except (OSError, http.client.HTTPException) as e:
            outcome = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
        check(outcome == 413, f"D: urllib posting 1 MB gets HTTPError 413 (got {outcome})")

        conn = http_conn(port)
        try:
            conn.request("POST", "/api/v1/channels/d/messages", body=b"z" * BIG,
                         headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
            outcome = conn.getresponse().status
        except (OSError, http.client.HTTPException) as e:
            outcome = f"{type(e).__name__}: {e}"
        finally:
            conn.close()
        check(outcome == 413, f"D: http.client posting 1 MB gets 413 (got {outcome})")
        status, _ = api_once(port, "POST", "/api/v1/channels/d/messages", '{"data":1}')
        check(status == 201, f"D: a small POST still works afterwards (got {status})")
    finally:
        stop(proc)


# --- E: WebSocket framing --------------------------------------------------------------

def ws_handshake(port):
    """A raw socket past a successful upgrade to /ws (and the bytes read after the head)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(upgrade_request(key=base64.b64encode(os.urandom(16)).decode()).encode())
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < 65536:
        data = s.recv(4096)
        if not data:
            break
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        s.close()
        raise RuntimeError(f"upgrade refused: {head[:60]!r}")
    return s, rest


def recv_exact(s, n, buf):
    while len(buf) < n:
        data = s.recv(65536)
        if not data:
            raise EOFError
        buf += data
    return buf[:n], buf[n:]


def read_frame(s, buf, deadline):
    """One frame from the server: (opcode, payload, the bytes read after it)."""
    s.settimeout(max(0.01, deadline - time.monotonic()))
    h, buf = recv_exact(s, 2, buf)
    n = h[1] & 0x7F
    if n == 126:
        ext, buf = recv_exact(s, 2, buf)
        n = struct.unpack("!H", ext)[0]
    elif n == 127:
        ext, buf = recv_exact(s, 8, buf)
        n = struct.unpack("!Q", ext)[0]
    if h[1] & 0x80:
        _, buf = recv_exact(s, 4, buf)  # a server must not mask; skip the key
    payload, buf = recv_exact(s, n, buf)
    return h[0] & 0x0F, payload, buf


def close_code_of(s, buf, timeout=5, text=False):
    """Reads frames until a close frame: its code, or a text saying what came instead.
    With text, the first text frame (decoded JSON) ends the wait too."""
    deadline = time.monotonic() + timeout
    try:
        for _ in range(1000):
            opcode, payload, buf = read_frame(s, buf, deadline)
            if text and opcode == 1:
                return json.loads(payload)
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else "a close frame without a code"
    except EOFError:
        return "the connection ended without a close frame"
    except socket.timeout:
        return f"no close frame within {timeout} s, the connection still open"
    except OSError as e:
        return f"{type(e).__name__} without a close frame"
    return "no close frame"


async def framing(port):
    # Known deviation (docs/protocol.md): libwebsockets 4.1.6 accepts an unmasked client
    # frame and exposes no mask bit to check, so the frame is served like a masked one.
    # RFC 6455 5.1 wants a 1002 close; this check fails once the library refuses it
    # (upstream v5.0.0 does), and then it should expect 1002 again.
    s, rest = await asyncio.to_thread(ws_handshake, port)
    try:
        s.sendall(ws_frame(1, b'{"type":"ping","id":1}', mask=False))
        got = await asyncio.to_thread(close_code_of, s, rest, 5, True)
    finally:
        s.close()
    check(got == {"type": "pong", "id": 1},
          f"E: an unmasked text frame is served like a masked one (known deviation) (got {got})")
    check(await serves(port, "e:alive-unmasked"), "E: after an unmasked text frame a fresh client connects, subscribes and publishes")
    cases = [
        ("a close with an invalid UTF-8 reason", ws_frame(8, struct.pack("!H", 1000) + b"\xff\xfe"), (1007, 1002)),
        ("a close with a 1-byte payload", ws_frame(8, b"\x03"), (1002,)),
    ] + [(f"a close with code {c}", ws_frame(8, struct.pack("!H", c)), (1002,)) for c in (1005, 1006, 999, 5000)]
    for i, (what, frame, want) in enumerate(cases):
        s, rest = await asyncio.to_thread(ws_handshake, port)
        try:
            s.sendall(frame)
            code = await asyncio.to_thread(close_code_of, s, rest)
        finally:
            s.close()
        check(code in want, f"E: {what} -> the server closes with {' or '.join(map(str, want))} (got {code})")
        check(await serves(port, f"e:alive{i}"), f"E: after {what} a fresh client connects, subscribes and publishes")
    # the valid counterpart, so that the cases above fail for the reason they name
    s, rest = await asyncio.to_thread(ws_handshake, port)
    try:
        s.sendall(ws_frame(8, struct.pack("!H", 1000) + b"bye"))
        code = await asyncio.to_thread(close_code_of, s, rest)
    finally:
        s.close()
    check(code == 1000, f"E: a valid close (1000, \"bye\") is answered with 1000 (got {code})")


def part_e():
    run_with({}, framing, 90)


# --- F: reset frames -------------------------------------------------------------------

async def reset_frames(port):
    channel = "chat:reset"
    ws = await ws_client(port, "careful", None)
    sub = await reply(ws, 2, {"type": "subscribe", "id": 2, "channel": channel})
    check(sub.get("type") == "subscribed", f"F: subscribed to {channel} ({sub})")
    epoch, last = sub.get("epoch"), sub.get("offset", 0)
    kept, stream, resets = [], [], []

    def post(i):
        return api_once(port, "POST", f"/api/v1/channels/{channel}/messages", json.dumps({"data": {"i": i}}))

    for i in (1, 2, 3):
        status, _ = await asyncio.to_thread(post, i)
        check(status == 201, f"F: publish {i} over HTTP answered 201 (got {status})")
    status, dropped = await asyncio.to_thread(api_once, port, "DELETE", f"/api/v1/channels/{channel}/messages")
    check(status == 200 and isinstance(dropped, dict) and dropped.get("epoch"),
          f"F: DELETE /api/v1/channels/{channel}/messages answered 200 with a new epoch ({status} {dropped})")
    new_epoch = (dropped or {}).get("epoch")
    for i in (4, 5, 6):
        status, _ = await asyncio.to_thread(post, i)
        check(status == 201, f"F: publish {i} over HTTP answered 201 (got {status})")

    deadline = time.monotonic() + 5
    while len(kept) < 6 and time.monotonic() < deadline:
        try:
            f = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        except asyncio.TimeoutError:
            break
        if f.get("channel") != channel:
            continue
        stream.append(f)
        if f.get("type") == "reset":
            resets.append(f)
            epoch, last = f.get("epoch"), f.get("offset", 0)
        elif f.get("type") == "message":
            if f["offset"] <= last:
                continue  # already seen in this epoch: a careful client drops it
            last = f["offset"]
            kept.append((f["offset"], f["data"]["i"]))
    await ws.close()

    want = {"type": "reset", "channel": channel, "offset": 0, "epoch": new_epoch}
    check(len(resets) == 1 and resets[0] == want, f"F: exactly one frame {json.dumps(want)} arrives (got {resets})")
    order = [f.get("type") + (f":{f['data']['i']}" if f.get("type") == "message" else "") for f in stream]
    check("reset" in order and "message:4" in order and order.index("reset") < order.index("message:4"),
          f"F: the reset comes before the 4th message ({order})")
    check(epoch == new_epoch, f"F: the client adopted the new epoch ({epoch} vs {new_epoch})")
    check(kept == [(1, 1), (2, 2), (3, 3), (1, 4), (2, 5), (3, 6)],
          f"F: the careful client keeps all 6 messages, offsets 1,2,3,1,2,3 (kept {kept})")


def part_f():
    run_with({"api_keys": API_KEYS}, reset_frames, 30)


# --- G: SIGHUP -------------------------------------------------------------------------

def posts_with(port, key, want=201, within=3.0):
    """Posts with key until the answer is want or time is up; returns the last status."""
    deadline = time.monotonic() + within
    while True:
        status, _ = api_once(port, "POST", "/api/v1/channels/g/messages", '{"data":1}', key=key)
        if status == want or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


async def still_open(ws, rid):
    try:
        return (await reply(ws, rid, {"type": "ping", "id": rid}, timeout=3)).get("type") == "pong"
    except (asyncio.TimeoutError, websockets.exceptions.WebSocketException):
        return False


async def sighup(proc, port, path):
    config = {"api_keys": API_KEYS}
    ws = await ws_client(port, "hup", "g:hup")

    async def hup(what, key, outcome):
        """SIGHUP; True if the server is still there and key posts with 201."""
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.3)
        check(proc.poll() is None, f"G: the server survives SIGHUP {what} ({exit_text(proc.returncode)})")
        if proc.poll() is not None:
            return False
        status = await asyncio.to_thread(posts_with, port, key)
        check(status == 201, f"G: {outcome} (got {status})")
        return True

    if not await hup("with an unchanged file", KEY, "the first key works after SIGHUP"):
        return

    status = await asyncio.to_thread(posts_with, port, KEY2, 401, 0)
    check(status == 401, f"G: the second key is refused before it is configured (got {status})")
    config["api_keys"] = API_KEYS + [{"name": "spec2", "key": KEY2, "quota": BIG_QUOTA}]
    write_config(path, config)
    if not await hup("after a second key was added", KEY2, "after SIGHUP the added key works over HTTP"):
        return
    check(await still_open(ws, 10), "G: a connection opened before the reload stays open")

    seen = len(proc.log_lines)
    write_config(path, '{"api_keys": [')
    if not await hup("with an invalid file", KEY2, "with an invalid file the previous configuration stays (the added key)"):
        return
    check(await still_open(ws, 11), "G: the connection is still open after the failed reload")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not any(path in l for l in proc.log_lines[seen:]):
        await asyncio.sleep(0.1)
    check(any(path in l for l in proc.log_lines[seen:]),
          f"G: the failed reload logs a line naming {path} (logged {proc.log_lines[seen:]})")
    check(await serves(port, "g:after"), "G: a fresh client can still connect, subscribe and publish")
    await ws.close()


def part_g():
    def end(proc):
        if proc.poll() is None:
            stop(proc)  # a server that died was reported by the check that saw it
    run_with_file({"api_keys": API_KEYS}, sighup, 60, end)


# --- H: graceful drain -----------------------------------------------------------------

N_DRAIN = 20


async def drained_clients(port, n):
    """n subscribed clients, each with a task giving (monotonic time, code) at its close."""
    clients = [await ws_client(port, f"d{i}", "h:drain") for i in range(n)]

    async def closed(ws):
        try:
            while True:
                await ws.recv()
        except websockets.exceptions.ConnectionClosed:
            return time.monotonic(), ws.close_code

    return clients, [asyncio.create_task(closed(ws)) for ws in clients]


async def drain(proc, port, period):
    clients, waits = await drained_clients(port, N_DRAIN)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.1)
    r = await asyncio.to_thread(raw_http, port, "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check(r.status == 503, f"H: /readyz answers 503 while draining (got {r.status or describe_end(r)})")
    r = await asyncio.to_thread(raw_http, port, upgrade_request())
    check_json_error(r, 503, "H: a new upgrade while draining", retry_after=True)
    done, _ = await asyncio.wait(waits, timeout=period + 3)
    ends = [w.result() for w in done]
    codes = sorted({c for _, c in ends})
    check(len(ends) == N_DRAIN and codes == [4012],
          f"H: all {N_DRAIN} clients are closed with 4012 (closed {len(ends)}, codes {codes})")
    if ends:
        times = [t for t, _ in ends]
        spread = max(times) - min(times)
        check(spread >= period / 2, f"H: the closes are spread over the drain period ({spread:.2f} s, "
              f"want >= {period / 2:.1f} s of a {period} s period)")
    rc = await asyncio.to_thread(wait_exit, proc, t0 + period + 3)
    check(rc == 0, f"H: the server exits 0 within drain_period + 3 s of SIGTERM (got {rc})")
    for ws in clients:
        await ws.close()


async def drain_cut(proc, port, period):
    clients, waits = await drained_clients(port, N_DRAIN)
    proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    open_left = sum(not w.done() for w in waits)
    check(proc.poll() is None and open_left > 0,
          f"H: 0.5 s into a {period} s drain the server still runs with clients open "
          f"({exit_text(proc.poll())}, {open_left}/{N_DRAIN} open)")
    t1 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    done, _ = await asyncio.wait(waits, timeout=3)
    ends = [w.result() for w in done]
    late = [t - t1 for t, _ in ends if t - t1 > 1.5]
    codes = sorted({c for _, c in ends})
    check(len(ends) == N_DRAIN and not late and set(codes) <= {1001, 4012},
          f"H: a second SIGTERM closes everyone at once with 1001 or 4012 (closed {len(ends)}/{N_DRAIN}, "
          f"codes {codes}, {len(late)} later than 1.5 s)")
    rc = await asyncio.to_thread(wait_exit, proc, t1 + 3)
    check(rc == 0, f"H: after a second SIGTERM the server exits 0 within 3 s (got {rc})")
    for ws in clients:
        await ws.close()


def wait_exit(proc, until):
    try:
        return proc.wait(timeout=max(0.1, until - time.monotonic()))
    except subprocess.TimeoutExpired:
        return "still running"


def part_h_drain():
    run_with_file({"drain_period": DRAIN_PERIOD}, lambda proc, port, _: drain(proc, port, DRAIN_PERIOD),
                  DRAIN_PERIOD + 30, kill_if_running)


def part_h_second_sigterm():
    run_with_file({"drain_period": 6}, lambda proc, port, _: drain_cut(proc, port, 6), 40, kill_if_running)


# ---------------------------------------------------------------------------------------

PARTS = [
    ("A keep-alive", part_a),
    ("B percent-encoding", part_b),
    ("C refusals", part_c),
    ("D oversized body", part_d),
    ("E framing", part_e),
    ("F reset frames", part_f),
    ("G SIGHUP", part_g),
    ("H drain", part_h_drain),
    ("H second SIGTERM", part_h_second_sigterm),
]


def main():
    only = set(sys.argv[2:])  # optional part letters, e.g. `http_edge_e2e.py BIN A C`
    outcome = []
    for name, fn in PARTS:
        if only and name.split()[0] not in only:
            continue
        print(f"--- {name}", flush=True)
        before = len(sbproc.FAILS)
        try:
            fn()
        except (Exception, SystemExit) as e:  # sbproc.start exits when the server does not start
            check(False, f"{name}: aborted: {type(e).__name__}: {e}")
        outcome.append((name, len(sbproc.FAILS) - before))
    for name, nfail in outcome:
        print(f"part {name}: {'FAILED (' + str(nfail) + ')' if nfail else 'passed'}", flush=True)
    return sbproc.summary()


if __name__ == "__main__":
    sys.exit(main())
