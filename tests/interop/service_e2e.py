#!/usr/bin/python3
"""Switchboard run as a service (issue 9), end to end against the real binaries:

- drain: webhook events still queued when SIGTERM comes reach a receiver started here
  before the server exits (with no client connected, only they hold the drain); a second
  SIGTERM, or the end of the drain, drops what is left and logs how many;
- SIGHUP: the log level and format, API key quotas and allowed origins change at once
  (429 turns 201 and back, an origin is let in and another refused at the handshake,
  debug lines appear), the server logs what it applied and which changed keys wait for a
  restart, and those are not applied;
- status lines carry their reason phrase: `201 Created`, `429 Too Many Requests`;
- --check-config refuses a host that does not resolve (exit 2), as a start does (exit 1);
- the README's 60-second tour against switchboard.example.json: the commands are taken
  from README.md and run as shown (with --url for the test's port), and what they print
  is compared with what the README says they print.

usage: service_e2e.py PATH/TO/switchboard PATH/TO/switchboard-cli SOURCE_DIR
Loopback only, free ports, every wait bounded."""
import asyncio
import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sbproc  # noqa: E402
from rawws import raw_status, upgrade_request  # noqa: E402
from sbproc import check, kill_if_running, run_all, stop  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
CLI = os.path.abspath(sys.argv[2])
SRC = os.path.abspath(sys.argv[3])
TMP = tempfile.mkdtemp(prefix="sb-service-")
KEY = "sk_service_1"
BIG_QUOTA = {"per_minute": 1000000, "burst": 1000000}


# --- HTTP --------------------------------------------------------------------------------

def post_raw(port, channel, data, key=KEY):
    """POSTs a message over a raw socket; returns (status line, headers with lower-case
    names)."""
    body = json.dumps({"data": data}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"POST /api/v1/channels/{channel}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in (h.partition(":") for h in head[1:]))
    return head[0], headers


def post_client(port, channel, data, key=KEY):
    """POSTs a message with http.client; returns (status, reason)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", f"/api/v1/channels/{channel}/messages", json.dumps({"data": data}),
                     {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        return r.status, r.reason
    finally:
        conn.close()


def get_json(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return r.status, (json.loads(body) if body.startswith(b"{") else body.decode())
    finally:
        conn.close()


def statuses(port, ns, channel="q"):
    """The status of a POST of {"n": n} to channel for each n of ns."""
    return [int(post_raw(port, channel, {"n": n})[0].split()[1]) for n in ns]


def wait_log(proc, pattern, since=0, timeout=5.0):
    """The first line of proc's log from index since that matches pattern, waiting up to
    timeout seconds for it; None if none did."""
    deadline = time.monotonic() + timeout
    while True:
        for line in proc.log_lines[since:]:
            if re.search(pattern, line):
                return line
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def wait_exit(proc, timeout):
    """proc's exit status within timeout seconds, or a description of why not."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return "still running"


# --- graceful drain and webhooks ---------------------------------------------------------

N_EVENTS = 20


class Receiver:
    """A webhook receiver on a free loopback port. It holds its first request until
    release() (20 s at most), so that the events the server produces meanwhile wait in
    its queue; then it answers every request 200 and records its events."""

    def __init__(self):
        self.events, self.lock = [], threading.Lock()
        self.first, self.released = threading.Event(), threading.Event()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not rec.first.is_set():
                    rec.first.set()
                    rec.released.wait(20)
                with rec.lock:
                    rec.events += json.loads(body).get("events", [])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def delivered(self):
        """The n of every message_published event answered so far, in arrival order."""
        with self.lock:
            return [e["data"]["n"] for e in self.events if e.get("name") == "message_published"]

    def release(self):
        self.released.set()

    def close(self):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def drain_server(rec, period):
    """A server whose message_published events of ev:* go to rec, draining for period s."""
    return sbproc.start(BIN, {
        "api_keys": [{"name": "hooks", "key": KEY, "quota": BIG_QUOTA}],
        "namespaces": {"ev": {"message_events": True}},
        "webhooks": [{"url": rec.url(), "events": ["message_published"], "secret": "whsec_service",
                      "timeout_ms": 30000}],
        "drain_period": period})


def queue_events(port, rec, what):
    """Publishes message 0 and, once its webhook request is held by rec, messages 1 to
    N_EVENTS - 1, which then wait in the server's queue. False after a failed check."""
    first = post_raw(port, "ev:a", {"n": 0})[0]
    if not check(first == "HTTP/1.1 201 Created" and rec.first.wait(5),
                 f"{what}: the first event's webhook request reaches the receiver ({first})"):
        return False
    codes = statuses(port, range(1, N_EVENTS), "ev:a")
    return check(codes == [201] * (N_EVENTS - 1), f"{what}: {N_EVENTS - 1} more messages published ({codes})")


def with_queued_events(period, what, then):
    """A receiver and a server draining for period s with N_EVENTS events for it, all but
    the one in flight queued; then then(proc, rec), and both are stopped."""
    rec = Receiver()
    proc, port = drain_server(rec, period)
    try:
        if queue_events(port, rec, what):
            then(proc, rec)
    finally:
        kill_if_running(proc)
        rec.close()


def running(proc):
    rc = proc.poll()
    return "running" if rc is None else f"exit {rc}"


def sigterm_and_wait(proc, timeout):
    """SIGTERM; returns (exit status or "still running", seconds it took)."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    return wait_exit(proc, timeout), time.monotonic() - t0


def dropped_count(proc):
    line = wait_log(proc, r"webhook: shutdown, dropping \d+ undelivered events", timeout=3)
    return int(re.search(r"dropping (\d+)", line).group(1)) if line else None


def test_drain_delivers_queued_webhooks():
    def then(proc, rec):
        t0 = time.monotonic()
        rc, _ = sigterm_and_wait(proc, 0.5)
        check(rc == "still running",
              f"a drain with no client left waits for the queued webhook events ({running(proc)})")
        rec.release()
        rc = wait_exit(proc, 10)
        took = time.monotonic() - t0
        got = rec.delivered()
        check(rc == 0, f"the server exits 0 once they are delivered (got {rc})")
        check(got == list(range(N_EVENTS)),
              f"the receiver got all {N_EVENTS} events, in order, before the server exited (got {got})")
        check(took < 5, f"the drain ends when the queue is empty, not at drain_period 10 s ({took:.1f} s)")
        check(wait_log(proc, r"undelivered", timeout=0.5) is None, "nothing is logged as undelivered")
    with_queued_events(10, "flush", then)


def test_second_signal_drops_webhooks():
    def then(proc, rec):
        rc, _ = sigterm_and_wait(proc, 0.5)
        check(rc == "still running", f"the drain waits for the webhook queue ({running(proc)})")
        rc, took = sigterm_and_wait(proc, 5)
        check(rc == 0 and took < 3, f"a second SIGTERM exits 0 at once (got {rc} after {took:.1f} s)")
        n = dropped_count(proc)
        check(n == N_EVENTS, f"it drops the {N_EVENTS} undelivered events (the held batch too) and "
              f"logs their count (logged {n})")
        check(rec.delivered() == [], f"none was answered ({rec.delivered()})")
    with_queued_events(10, "second signal", then)


def test_drain_end_drops_webhooks():
    def then(proc, rec):
        rc, took = sigterm_and_wait(proc, 10)
        # The loop ends 2 s after drain_period (server.c SHUTDOWN_GRACE_MS).
        check(rc == 0 and 2.5 < took < 5,
              f"a drain that cannot deliver ends after drain_period 1 s + 2 s (exit {rc} after {took:.1f} s)")
        n = dropped_count(proc)
        check(n == N_EVENTS, f"what is left ({N_EVENTS} events) is dropped and counted in the log (logged {n})")
    with_queued_events(1, "drain end", then)


# --- SIGHUP ------------------------------------------------------------------------------

def upgrade_status(port, origin):
    return asyncio.run(raw_status("127.0.0.1", port, upgrade_request(origin=origin)))


async def binary_frame_close(port):
    """A client that sends a binary frame; the server closes it (1003). Returns the code."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "connect", "id": 1, "user": "hup"}))
        await asyncio.wait_for(ws.recv(), 5)
        await ws.send(b"\x00")
        try:
            await asyncio.wait_for(ws.wait_closed(), 5)
        except asyncio.TimeoutError:
            pass
        return ws.close_code


async def two_connections(port):
    """Two WebSocket connections open at once from 127.0.0.1; True if both opened."""
    try:
        a = await websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5)
        b = await websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5)
    except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
        return False
    await a.close()
    await b.close()
    return True


def debug_lines(proc, since):
    return [ln for ln in proc.log_lines[since:] if re.match(r"\S+ D ", ln)]


def hup(proc, path, config, pattern):
    """Writes config to path (replacing the file at once), sends SIGHUP and returns the
    log line that matches pattern (None if none came within 5 s), and the index of the
    first line logged after the signal."""
    with open(path + ".tmp", "w") as f:
        json.dump(config, f)
    os.replace(path + ".tmp", path)
    since = len(proc.log_lines)
    proc.send_signal(signal.SIGHUP)
    return wait_log(proc, pattern, since), since


def test_sighup_reloads():
    path = os.path.join(TMP, "hup.json")
    origins_a = ["https://a.example"]
    config = {"log_level": "info", "allowed_origins": origins_a, "drain_period": 0,
              "api_keys": [{"name": "quota", "key": KEY, "quota": {"per_minute": 1, "burst": 2}}]}
    proc, port = sbproc.start(BIN, config, path=path)
    try:
        got = statuses(port, range(3))
        check(got == [201, 201, 429], f"before SIGHUP: a quota of burst 2 answers 201, 201, 429 (got {got})")
        got = (upgrade_status(port, "https://a.example"), upgrade_status(port, "https://b.example"))
        check(got == (101, 403), f"before SIGHUP: origin a is let in, b refused (got {got})")
        mark = len(proc.log_lines)
        code = asyncio.run(binary_frame_close(port))
        time.sleep(0.3)
        check(code == 1003 and not debug_lines(proc, mark),
              f"at log_level info nothing is logged at debug (close {code}, {debug_lines(proc, mark)})")

        # log level, quota and origins change; limits and drain_period wait for a restart.
        config.update(log_level="debug", allowed_origins=["https://b.example"], drain_period=3,
                      limits={"max_connections_per_ip": 1},
                      api_keys=[{"name": "quota", "key": KEY, "quota": BIG_QUOTA}])
        applied, since = hup(proc, path, config, r"SIGHUP: reloaded .*; applied: ")
        check(applied is not None and all(k in applied for k in ("log_level", "api_keys", "allowed_origins")),
              f"SIGHUP logs `applied: log_level, allowed_origins, api_keys` ({applied!r})")
        later = wait_log(proc, r"applied only at the next restart: ", since, timeout=1)
        check(later is not None and "limits" in later and "drain_period" in later
              and "log_level" not in later.split("restart:")[1],
              f"the changed keys that need a restart are logged as such ({later!r})")
        got = statuses(port, range(5))
        check(got == [201] * 5, f"after SIGHUP the raised quota answers 201 (got {got})")
        got = (upgrade_status(port, "https://a.example"), upgrade_status(port, "https://b.example"))
        check(got == (403, 101), f"after SIGHUP origin b is let in and a refused (got {got})")
        mark = len(proc.log_lines)
        code = asyncio.run(binary_frame_close(port))
        check(wait_log(proc, r"^\S+ D ", mark) is not None,
              f"after SIGHUP to debug, debug lines are logged (close {code})")
        check(asyncio.run(two_connections(port)),
              "limits.max_connections_per_ip 1 is not applied before a restart")

        # Back to a quota of 1 (the bucket is kept, and capped to the new burst) and to JSON lines.
        config.update(log_format="json", api_keys=[{"name": "quota", "key": KEY,
                                                    "quota": {"per_minute": 1, "burst": 1}}])
        applied, since = hup(proc, path, config, r'^\{.*"msg":"server: SIGHUP: reloaded .*applied: ')
        check(applied is not None and "log_format" in applied and "api_keys" in applied,
              f"a second SIGHUP applies log_format json, logged as JSON ({applied!r})")
        got = statuses(port, range(2))
        check(got == [201, 429], f"after SIGHUP the lowered quota answers 201, 429 (got {got})")
        lines = proc.log_lines[since:]
        check(lines and all(ln.startswith("{") and json.loads(ln).keys() >= {"time", "level", "msg"}
                            for ln in lines),
              f"every line from then on is a JSON object ({lines[:2]})")
    finally:
        if proc.poll() is None:
            stop(proc)
        os.unlink(path)


# --- reason phrases ----------------------------------------------------------------------

def test_reason_phrases():
    proc, port = sbproc.start(BIN, {"api_keys": [{"name": "r", "key": KEY,
                                                  "quota": {"per_minute": 1, "burst": 2}}]})
    try:
        line, _ = post_raw(port, "r", 1)
        check(line == "HTTP/1.1 201 Created", f"a publish's status line is `201 Created` ({line!r})")
        got = post_client(port, "r", 2)
        check(got == (201, "Created"), f"http.client reads reason `Created` ({got})")
        line, headers = post_raw(port, "r", 3)
        check(line == "HTTP/1.1 429 Too Many Requests" and headers.get("retry-after", "").isdigit(),
              f"a quota refusal's status line is `429 Too Many Requests`, with Retry-After ({line!r})")
        got = post_client(port, "r", 4)
        check(got == (429, "Too Many Requests"), f"http.client reads reason `Too Many Requests` ({got})")
    finally:
        stop(proc)


# --- --check-config and the host --------------------------------------------------------

def run_bin(args, env=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=20,
                          env={**os.environ, **(env or {})})


def test_check_config_host():
    empty = os.path.join(TMP, "empty.json")
    named = os.path.join(TMP, "unresolvable.json")
    with open(empty, "w") as f:
        f.write("{}")
    with open(named, "w") as f:
        json.dump({"host": "no-such-host.invalid"}, f)
    r = run_bin(["--check-config", named])
    check(r.returncode == 2 and r.stdout == "" and "configuration OK" not in r.stderr
          and named in r.stderr and 'host "no-such-host.invalid"' in r.stderr,
          f"--check-config refuses a host that does not resolve, exit 2 ({r.returncode}: {r.stderr.strip()!r})")
    r = run_bin(["--config", named, "--port", "0"])
    check(r.returncode == 1 and 'host "no-such-host.invalid"' in r.stderr and "listening" not in r.stderr,
          f"and a start with that file exits 1 for the same reason ({r.returncode}: {r.stderr.strip()[-160:]!r})")
    for args, env, what in ((["--host", ""], None, "an empty --host"),
                            (["--host", "[not-v6]"], None, "--host [not-v6]"),
                            (["--host", "256.1.1.1"], None, "--host 256.1.1.1"),
                            ([], {"SWITCHBOARD_HOST": "no-such-host.invalid"}, "SWITCHBOARD_HOST")):
        r = run_bin(["--check-config", empty, *args], env)
        check(r.returncode == 2 and "host" in r.stderr,
              f"--check-config refuses {what}, exit 2 ({r.returncode}: {r.stderr.strip()!r})")
    for host in ("localhost", "127.0.0.1", "[::1]"):
        r = run_bin(["--check-config", empty, "--host", host])
        check(r.returncode == 0 and json.loads(r.stdout or "{}").get("host") == host,
              f"--check-config accepts --host {host} ({r.returncode}: {r.stderr.strip()!r})")


# --- the README's tour -------------------------------------------------------------------

def readme_tour():
    with open(os.path.join(SRC, "README.md")) as f:
        text = f.read()
    m = re.search(r"^## A 60-second tour\n(.*?)(?=^## )", text, re.S | re.M)
    return m.group(1) if m else ""


def fenced(text, lang):
    """The bodies of text's fenced blocks of language lang ("" for none)."""
    return [body for tag, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M) if tag == lang]


def tour_command(tour, pattern):
    """The README's shell line of the tour that matches pattern, made to run here: the
    CLI from the build and --url to the test's server ($SB_URL)."""
    for block in fenced(tour, "sh"):
        for line in block.splitlines():
            if not line.startswith("#") and re.search(pattern, line):
                return line.replace("./build/switchboard-cli", '"$SB_CLI" --url "$SB_URL"')
    check(False, f"README: the tour shows a command matching {pattern!r}")
    return None


def shell(script, env, **kw):
    """Runs script (exec-ing its last command, so that signals reach the CLI) in bash."""
    return subprocess.Popen(["bash", "-c", script], env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


VARIES = {"client", "epoch", "offset"}  # made up by each run


def same_shape(want, got, key=None):
    """want and got have the same keys, lists and values, except the values of VARIES,
    which need only have the same type; presence members in any order."""
    if isinstance(want, dict):
        return isinstance(got, dict) and set(want) == set(got) and all(
            same_shape(want[k], got[k], k) for k in want)
    if isinstance(want, list):
        if key == "members":
            want, got = (sorted(x, key=lambda m: str(m.get("user"))) if isinstance(x, list) else x
                         for x in (want, got))
        return isinstance(got, list) and len(want) == len(got) and all(
            same_shape(w, g) for w, g in zip(want, got))
    return type(want) is type(got) if key in VARIES else want == got


def lines_within(lines, n, timeout):
    deadline = time.monotonic() + timeout
    while len(lines) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return [json.loads(ln) for ln in list(lines)[:n]]


def collect(stream):
    lines = []
    threading.Thread(target=lambda: [lines.append(ln) for ln in stream], daemon=True).start()
    return lines


def wait_channels(port, n):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if get_json(port, "/healthz")[1].get("channels") == n:
            return True
        time.sleep(0.05)
    return False


def ticks_summary(tour):
    m = re.search(r"`(ticks: \d+ published to .*? errors)`", tour)
    check(m is not None, "README: the tour quotes the ticks summary line")
    if m is None:
        return None
    # The same line with the time and the rate free, and the two counts as groups.
    parts = re.split(r"(\d+(?:\.\d+)?)", m.group(1)) + [""]
    out = []
    for i, part in enumerate(parts[:-1]):
        if i % 2 == 0:  # text between the numbers
            out.append(re.escape(part))
        elif "." in part:
            out.append(r"[0-9.]+")
        else:
            out.append(r"(\d+)" if re.match(r" (published|acknowledged)\b", parts[i + 1]) else part)
    return "".join(out)


def tour_cli(tour, env, port):
    """The tour's CLI commands; returns the bob `sub` process (still running)."""
    bob = shell("exec " + (tour_command(tour, r" sub chat:lobby$") or "false"), env)
    bob_lines = collect(bob.stdout)
    check(wait_channels(port, 1), "README tour: bob's sub holds chat:lobby")

    jsons = fenced(tour, "json")
    want_ack = json.loads(jsons[0]) if jsons else {}
    want_sub = [json.loads(ln) for ln in jsons[1].splitlines()] if len(jsons) > 1 else []
    pub = tour_command(tour, r" pub chat:lobby ")
    if pub:
        r = subprocess.run(["bash", "-c", pub], env={**os.environ, **env}, capture_output=True,
                           text=True, timeout=20)
        got = json.loads(r.stdout) if r.returncode == 0 and r.stdout.startswith("{") else r.stdout
        check(r.returncode == 0 and same_shape(want_ack, got),
              f"README tour: pub prints the ack the README shows ({r.returncode}: {r.stdout.strip()!r})")
    got = lines_within(bob_lines, 3, 5)
    check(len(want_sub) == 3 and same_shape(want_sub, got),
          f"README tour: bob's sub prints alice's join, message and leave as shown ({got})")

    chat = tour_command(tour, r" chat chat:lobby$")
    if chat:
        r = subprocess.run(["bash", "-c", chat], env={**os.environ, **env}, input="hello\n",
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and "alice: hello" in r.stdout.splitlines(),
              f"README tour: chat prints `alice: hello` ({r.returncode}: {r.stdout.strip()!r})")

    pattern, ticks = ticks_summary(tour), tour_command(tour, r" ticks ticks:prices ")
    if pattern and ticks:
        r = subprocess.run(["bash", "-c", ticks + " --count 30"], env={**os.environ, **env},
                           capture_output=True, text=True, timeout=30)
        m = re.fullmatch(pattern, r.stdout.strip())
        check(r.returncode == 0 and m is not None and m.groups() == ("30", "30")
              and r.stdout.strip().endswith("30 acknowledged, 0 errors"),
              f"README tour: ticks ... --count 30 prints `30 acknowledged, 0 errors` ({r.stdout.strip()!r})")
        p = shell("exec " + ticks, env)
        time.sleep(1.5)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=15)
        m = re.fullmatch(pattern, out.strip())
        check(p.returncode == 0 and m is not None and m.group(1) == m.group(2) and int(m.group(1)) > 0,
              f"README tour: ticks until Ctrl-C prints the summary, every tick acknowledged "
              f"({p.returncode}: {out.strip()!r})")

    token, secret_sub = tour_command(tour, r"^T=\$\(.* token "), tour_command(tour, r' --token "\$T" sub ')
    if token and secret_sub:
        p = shell(token + "\nexec " + secret_sub, env)
        check(wait_channels(port, 2) and p.poll() is None,
              "README tour: with the minted token alice subscribes to secret:team-a")
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
        check(p.returncode == 0, f"README tour: that sub exits 0 on Ctrl-C (got {p.returncode})")
        r = subprocess.run(["bash", "-c", secret_sub.replace('--token "$T" ', "")],
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and "forbidden" in r.stderr,
              f"README tour: without it secret:team-a is forbidden ({r.returncode}: {r.stderr.strip()!r})")
    return bob


def transcript(tour):
    """The wscat lines of the tour: [(">", frame) or ("<", frame)]."""
    out = []
    for block in fenced(tour, ""):
        for line in block.splitlines():
            if line[:2] in ("> ", "< "):
                out.append((line[0], json.loads(line[2:])))
    return out


async def tour_websocket(tour, port):
    """Replays the tour's wscat session (carol), then connects dana as the browser
    snippet does; returns the two open connections."""
    steps = transcript(tour)
    check(len(steps) >= 10, f"README: the tour shows a wscat session ({len(steps)} lines)")
    carol = await websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5)
    for direction, frame in steps:
        if direction == ">":
            await carol.send(json.dumps(frame))
            continue
        got = json.loads(await asyncio.wait_for(carol.recv(), 5))
        check(same_shape(frame, got), f"README tour: wscat < {json.dumps(frame)[:70]}... (got {got})")
    dana = await websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5)
    await dana.send(json.dumps({"type": "connect", "user": "dana"}))
    await dana.send(json.dumps({"type": "subscribe", "channel": "chat:lobby"}))
    for _ in range(2):
        await asyncio.wait_for(dana.recv(), 5)
    return carol, dana


def test_readme_tour():
    tour = readme_tour()
    check(tour != "", "README: has the section A 60-second tour")
    with open(os.path.join(SRC, "switchboard.example.json")) as f:
        example = json.load(f)
    check("switchboard.example.json" in tour, "README: the tour runs on switchboard.example.json")
    proc, port = sbproc.start(BIN, example, drain_period=None)
    env = {"SB_CLI": CLI, "SB_URL": f"ws://127.0.0.1:{port}/ws"}
    bob = None
    try:
        bob = tour_cli(tour, env, port)

        async def sockets():
            carol, dana = await tour_websocket(tour, port)
            try:
                m = re.search(r"`curl http://127\.0\.0\.1:8080/healthz` answers\s+`(\{.*?\})`", tour)
                want = json.loads(m.group(1)) if m else None
                got = await asyncio.to_thread(get_json, port, "/healthz")
                check(want is not None and got == (200, want),
                      f"README tour: /healthz answers {want} with bob, carol and dana (got {got})")
                status, text = await asyncio.to_thread(get_json, port, "/metrics")
                check(status == 200 and "\nswitchboard_connections 3\n" in text,
                      f"README tour: /metrics gives Prometheus metrics ({status})")
            finally:
                await carol.close()
                await dana.close()

        asyncio.run(asyncio.wait_for(sockets(), 60))
        bob.send_signal(signal.SIGINT)
        bob.wait(timeout=10)
        check(bob.returncode == 0, f"README tour: bob's sub exits 0 on Ctrl-C (got {bob.returncode})")
    finally:
        if bob is not None:
            kill_if_running(bob)
        stop(proc)


def main():
    return run_all((test_drain_delivers_queued_webhooks, test_second_signal_drops_webhooks,
                    test_drain_end_drops_webhooks, test_sighup_reloads, test_reason_phrases,
                    test_check_config_host, test_readme_tour))


if __name__ == "__main__":
    sys.exit(main())
