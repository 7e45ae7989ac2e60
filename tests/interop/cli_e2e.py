#!/usr/bin/python3
"""End-to-end test of the two programs a user runs: `switchboard` (command line,
configuration errors, exit codes) and `switchboard-cli` (sub, pub, chat, ticks and
their exit codes) against a real server on a free loopback port. Bounded in time.

usage: cli_e2e.py PATH/TO/switchboard PATH/TO/switchboard-cli
"""
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

SERVER, CLI = sys.argv[1], sys.argv[2]
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def run(args, **kw):
    kw.setdefault("timeout", 20)
    return subprocess.run(args, capture_output=True, text=True, **kw)


def write_config(obj):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    f.write(obj if isinstance(obj, str) else json.dumps(obj))
    f.close()
    return f.name


def start_server(config):
    path = write_config(config)
    proc = subprocess.Popen([SERVER, "--config", path, "--host", "127.0.0.1", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    port = None
    deadline = time.time() + 10
    while time.time() < deadline:
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", proc.stderr.readline())
        if m:
            port = int(m.group(1))
            break
    os.unlink(path)
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    if port is None:
        proc.kill()
        sys.exit("server did not start")
    return proc, port


def test_server_command_line():
    r = run([SERVER, "--version"])
    check(r.returncode == 0 and re.match(r"switchboard \d+\.\d+\.\d+", r.stdout), "switchboard --version")
    r = run([SERVER, "--help"])
    check(r.returncode == 0 and "--config" in r.stdout, "switchboard --help")
    r = run([SERVER, "--bogus"])
    check(r.returncode == 2, "unknown option exits 2")
    r = run([SERVER, "--port", "99999"])
    check(r.returncode == 2 and "--port" in r.stderr, "bad --port exits 2 and names it")
    for cfg, key in [({"limits": {"max_mesage_size": 1}}, "limits.max_mesage_size"),
                     ({"port": "80"}, "port"),
                     ({"namespaces": {"chat": {"publish": "everyone"}}}, "namespaces.chat.publish"),
                     ({"websocket": {"ping_interval": 30, "idle_timeout": 10}}, "websocket.idle_timeout"),
                     ("{not json", "invalid JSON")]:
        path = write_config(cfg)
        r = run([SERVER, "--config", path])
        os.unlink(path)
        check(r.returncode == 2 and key in r.stderr, f"config error names {key} (rc={r.returncode}: {r.stderr.strip()})")
    r = run([SERVER, "--config", "/nonexistent.json"])
    check(r.returncode == 2 and "/nonexistent.json" in r.stderr, "missing config file exits 2")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    r = run([SERVER, "--host", "127.0.0.1", "--port", str(busy.getsockname()[1])])
    busy.close()
    check(r.returncode == 1 and "cannot listen" in r.stderr, f"port in use exits 1 ({r.stderr.strip()[-80:]})")


def healthz(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def test_client(port):
    url = ["--url", f"ws://127.0.0.1:{port}/ws"]
    sub = subprocess.Popen([CLI, *url, "--user", "bob", "sub", "room", "ticks:x"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    threading.Thread(target=lambda: [lines.append(l) for l in sub.stdout], daemon=True).start()
    # Publish only once sub holds both subscriptions: /healthz counts channels.
    deadline = time.time() + 10
    while time.time() < deadline and healthz(port).get("channels") != 2:
        time.sleep(0.02)

    r = run([CLI, *url, "--user", "alice", "pub", "room", '{"text":"hi","p":0.1}'])
    ack = json.loads(r.stdout) if r.returncode == 0 else {}
    check(ack.get("type") == "published" and ack.get("offset") == 1, f"pub prints the ack, exits 0 ({r.stdout.strip()})")
    r = run([CLI, *url, "pub", "room", "{bad json"])
    check(r.returncode == 2 and r.stderr.startswith("switchboard-cli:"), "pub with invalid JSON exits 2")
    r = run([CLI, *url, "pub", "ticks:x", "1"])
    check(r.returncode == 1 and "forbidden" in r.stderr, "pub refused by the namespace exits 1")
    r = run([CLI, "--url", "ws://127.0.0.1:1/ws", "--timeout", "2", "pub", "room", "1"])
    check(r.returncode == 3, "unreachable server exits 3")
    r = run([CLI, *url, "--user", "carol", "chat", "room"], input="hello\nsecond line\n")
    check(r.returncode == 0 and "carol: hello" in r.stdout and "carol: second line" in r.stdout,
          f"chat publishes stdin lines and prints them ({r.stdout.strip()!r})")
    # ticks may not publish into ticks:x (publish: none): it uses an open namespace.
    r = run([CLI, *url, "ticks", "room", "--rate", "50", "--count", "5", "--symbols", "BTC,ETH"])
    check(r.returncode == 0 and "5 published" in r.stdout, f"ticks --count 5 ({r.stdout.strip()})")

    deadline = time.time() + 5
    while time.time() < deadline and len(lines) < 8:
        time.sleep(0.05)
    sub.send_signal(signal.SIGINT)
    rc = sub.wait(timeout=10)
    check(rc == 0, f"sub exits 0 on SIGINT (got {rc})")
    frames = [json.loads(l) for l in lines]
    check(len(frames) == 8, f"sub printed 8 messages, one JSON line each (got {len(frames)})")
    check(frames and '"data":{"text":"hi","p":0.1}' in lines[0], "sub prints the data byte for byte")
    check([f["offset"] for f in frames] == list(range(1, len(frames) + 1)), "sub sees offsets 1..8 in order")
    ticks = [f["data"] for f in frames[3:]]
    check(all(set(t) == {"symbol", "price", "ts"} and t["symbol"] in ("BTC", "ETH") for t in ticks),
          "ticks publish {symbol, price, ts}")


def main():
    test_server_command_line()
    proc, port = start_server({"log_level": "info", "namespaces": {"ticks": {"publish": "none"}}})
    try:
        test_client(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        check(rc == 0, f"server exits 0 after SIGTERM (got {rc})")
    print(f"cli_e2e: {len(FAILS)} failed", flush=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
