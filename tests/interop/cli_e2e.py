#!/usr/bin/python3
"""End-to-end test of the two programs a user runs: `switchboard` (command line,
configuration errors, exit codes) and `switchboard-cli` (sub, pub, chat, ticks,
presence, history, tokens, minting tokens, channel resets, and sub's reconnection with
recovery, with their exit codes) against a real server on a free loopback port. Bounded
in time.

usage: cli_e2e.py PATH/TO/switchboard PATH/TO/switchboard-cli
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import sbproc
from sbproc import FAILS, check

SERVER, CLI = sys.argv[1], sys.argv[2]


def run(args, **kw):
    kw.setdefault("timeout", 20)
    return subprocess.run(args, capture_output=True, text=True, **kw)


def write_config(obj):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    f.write(obj if isinstance(obj, str) else json.dumps(obj))
    f.close()
    return f.name


def start_server(config):
    """The server with config and its own drain_period default; returns (process, port)."""
    return sbproc.start(SERVER, config, drain_period=None)


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
    test_chat_refusals(url)
    # ticks may not publish into ticks:x (publish: none): it uses an open namespace.
    r = run([CLI, *url, "ticks", "room", "--rate", "50", "--count", "5", "--symbols", "BTC,ETH"])
    check(r.returncode == 0 and "5 published" in r.stdout, f"ticks --count 5 ({r.stdout.strip()})")

    # sub also prints the join/leave events of the other clients (the built-in default
    # namespace has join_leave): count the message frames.
    def messages():
        return [l for l in list(lines) if json.loads(l).get("type") == "message"]

    deadline = time.time() + 5
    while time.time() < deadline and len(messages()) < 8:
        time.sleep(0.05)
    sub.send_signal(signal.SIGINT)
    rc = sub.wait(timeout=10)
    check(rc == 0, f"sub exits 0 on SIGINT (got {rc})")
    check(all(json.loads(l).get("type") in ("message", "join", "leave") for l in lines),
          "sub prints only message, join and leave frames, one JSON line each")
    msg_lines = messages()
    frames = [json.loads(l) for l in msg_lines]
    check(len(frames) == 8, f"sub printed 8 messages, one JSON line each (got {len(frames)})")
    check(frames and '"data":{"text":"hi","p":0.1}' in msg_lines[0], "sub prints the data byte for byte")
    check([f["offset"] for f in frames] == list(range(1, len(frames) + 1)), "sub sees offsets 1..8 in order")
    ticks = [f["data"] for f in frames[3:]]
    check(all(set(t) == {"symbol", "price", "ts"} and t["symbol"] in ("BTC", "ETH") for t in ticks),
          "ticks publish {symbol, price, ts}")


def test_chat_refusals(url):
    """A line chat refuses before sending (not UTF-8, a frame over 64 KiB) or that the
    server refuses is reported, the chat goes on, and the exit status is 1: also when a
    signal ends the chat. Publishes nothing into "room" (test_client counts its messages)."""
    def chat(stdin):
        return subprocess.run([CLI, *url, "--user", "dave", "chat", "chat-refused"], input=stdin,
                              capture_output=True, timeout=20)

    r = chat(b"before\n\xff\xfe not utf-8\nafter\n")
    out, err = r.stdout.decode(), r.stderr.decode()
    check(r.returncode == 1 and "not valid UTF-8, not sent" in err,
          f"chat: a line that is not UTF-8 is refused here, exit 1 ({r.returncode}: {err.strip()!r})")
    check("dave: before" in out and "dave: after" in out, f"and the lines around it are sent ({out!r})")
    r = chat(b"x" * 70000 + b"\nafter\n")
    check(r.returncode == 1 and "not sent" in r.stderr.decode() and "dave: after" in r.stdout.decode(),
          f"chat: a line over 64 KiB is refused here, exit 1 ({r.returncode}: {r.stderr.decode().strip()!r})")
    r = chat(b"y" * 65500 + b"\n")
    check(r.returncode == 1 and "not sent" in r.stderr.decode(),
          f"chat: a line making a frame over 64 KiB is refused here, exit 1 ({r.returncode})")
    r = chat(b"z" * 62000 + b"\nafter\n")
    check(r.returncode == 1 and "too_large" in r.stderr.decode() and "dave: after" in r.stdout.decode(),
          f"chat: a line the server refuses (too_large) exits 1 ({r.returncode}: {r.stderr.decode().strip()[:120]!r})")
    r = chat(b"fine\n\nalso fine\n")
    check(r.returncode == 0 and r.stderr == b"", f"chat: no refused line (empty lines skipped): exit 0 ({r.returncode})")

    # Interactive: SIGINT ends a chat with 0, but with 1 after a refused line.
    for lines, want in [(b"ok\n", 0), (b"\xc3\x28\nok\n", 1)]:
        with subprocess.Popen([CLI, *url, "chat", "chat-refused"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
            p.stdin.write(lines)
            p.stdin.flush()
            echoed = read_until(p.stdout, b": ok")
            p.send_signal(signal.SIGINT)
            rc = wait_exit(p)
            err = p.stderr.read().decode()
        check(echoed and rc == want, f"chat {lines!r} ended by SIGINT exits {want} (got {rc}: {err.strip()!r})")


def wait_exit(proc, timeout=10):
    """The exit status of proc, killed if it has not exited within timeout."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def read_until(pipe, needle, timeout=10):
    """Reads a binary pipe until needle has been seen (True) or EOF or the deadline (False)."""
    seen = b""
    deadline = time.time() + timeout
    while needle not in seen and time.time() < deadline:
        if not select.select([pipe], [], [], max(0, deadline - time.time()))[0]:
            break
        chunk = os.read(pipe.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    return needle in seen


SECRET = "cli-e2e-secret-0123456789abcdef0123"
API_KEY = "cli-e2e-api-key"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(claims):
    """An HS256 JWT signed with SECRET (auth.jwt.hmac_secret of the second server)."""
    signing = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(SECRET.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


class Cli:
    """A long-running switchboard-cli (sub) whose stdout and stderr lines are collected."""

    def __init__(self, args):
        self.proc = subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out, self.err = [], []
        threading.Thread(target=lambda: [self.out.append(l) for l in self.proc.stdout], daemon=True).start()
        threading.Thread(target=lambda: [self.err.append(l) for l in self.proc.stderr], daemon=True).start()

    def frames(self, type_="message"):
        return [json.loads(l) for l in list(self.out) if json.loads(l).get("type") == type_]

    def wait_for(self, cond, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline and not cond():
            time.sleep(0.05)
        return cond()

    def stderr(self):
        return "".join(self.err)

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return wait_exit(self.proc)


def presence_users(url, channel):
    """The sorted users of the channel's members, or None when presence failed."""
    r = run([CLI, *url, "presence", channel])
    if r.returncode != 0:
        return None
    return sorted(json.loads(l)["user"] for l in r.stdout.splitlines()[:-1])


def test_presence_history(url):
    alice = Cli([*url, "--user", "alice", "sub", "chat:room"])
    check(alice.wait_for(lambda: presence_users(url, "chat:room") == ["alice"]), "presence lists a subscriber")
    tf = tempfile.NamedTemporaryFile("w", suffix=".jwt", delete=False)
    tf.write(token({"sub": "bob", "exp": int(time.time()) + 600, "info": {"name": "Bob"}}) + "\n")
    tf.close()
    bob = Cli([*url, "--user", "not-bob", "--token-file", tf.name, "sub", "chat:room"])
    check(bob.wait_for(lambda: presence_users(url, "chat:room") == ["alice", "bob"]),
          "presence lists two subscribers; the user comes from the token")
    r = run([CLI, *url, "presence", "chat:room"])
    out = r.stdout.splitlines()
    members = [json.loads(l) for l in out[:-1]]
    stats = json.loads(out[-1]) if out else {}
    check(r.returncode == 0 and len(members) == 2 and all(set(m) >= {"client", "user"} for m in members),
          f"presence prints one member per line, exits 0 ({r.stdout.strip()!r})")
    check([m.get("info") for m in members if m["user"] == "bob"] == [{"name": "Bob"}], "presence shows the token's info")
    check(stats.get("type") == "presence_stats" and stats.get("clients") == 2 and stats.get("users") == 2,
          f"presence ends with the presence_stats line ({out[-1] if out else ''})")
    check(alice.wait_for(lambda: [f["member"]["user"] for f in alice.frames("join")] == ["bob"]),
          f"sub prints the join of another subscriber ({alice.out})")
    check(bob.stop() == 0, "sub with --token-file exits 0 on SIGINT")
    check(alice.wait_for(lambda: [f["member"]["user"] for f in alice.frames("leave")] == ["bob"]),
          "sub prints its leave")
    os.unlink(tf.name)

    sent = ['{"n":1}', '"two"', '[3, 0.1]']
    for data in sent:
        r = run([CLI, *url, "--user", "alice", "pub", "chat:room", data])
        check(r.returncode == 0, f"pub {data} to chat:room")
    r = run([CLI, *url, "history", "chat:room"])
    hist = [json.loads(l) for l in r.stdout.splitlines()]
    check(r.returncode == 0 and [h["offset"] for h in hist] == [1, 2, 3], f"history prints the messages oldest first ({r.stdout.strip()!r})")
    check(all(f'"data":{d}' in l for d, l in zip(sent, r.stdout.splitlines())), "history prints data byte for byte")
    check(all(h["from"]["user"] == "alice" for h in hist), "history messages carry from")
    r = run([CLI, *url, "history", "chat:room", "--limit", "2"])
    check(r.returncode == 0 and [json.loads(l)["offset"] for l in r.stdout.splitlines()] == [2, 3], "history --limit 2: the 2 newest")
    r = run([CLI, *url, "history", "chat:empty"])
    check(r.returncode == 0 and r.stdout == "", "history of an unknown channel prints nothing, exits 0")
    check(alice.wait_for(lambda: len(alice.frames()) == 3), "sub saw the 3 messages")

    rew = Cli([*url, "sub", "--rewind", "2", "chat:room"])
    check(rew.wait_for(lambda: len(rew.frames()) == 2) and [f["offset"] for f in rew.frames()] == [2, 3],
          f"sub --rewind 2 prints the last 2 messages first ({rew.out})")
    run([CLI, *url, "--user", "alice", "pub", "chat:room", "4"])
    check(rew.wait_for(lambda: len(rew.frames()) == 3) and [f["offset"] for f in rew.frames()] == [2, 3, 4],
          "then the live ones")
    check(rew.stop() == 0 and alice.stop() == 0, "subs exit 0 on SIGINT")

    r = run([CLI, *url, "presence", "plain:x"])
    check(r.returncode == 1 and "forbidden" in r.stderr, f"presence refused where presence is off exits 1 ({r.stderr.strip()})")
    r = run([CLI, *url, "history", "plain:x"])
    check(r.returncode == 1 and "forbidden" in r.stderr, "history refused where history is off exits 1")
    r = run([CLI, *url, "history", "chat:room", "--limit", "0"])
    check(r.returncode == 2, "history --limit 0 is a usage error")
    r = run([CLI, *url, "--token", "not.a.token", "presence", "chat:room"])
    check(r.returncode == 1 and "unauthorized" in r.stderr, f"a bad token is unauthorized, exit 1 ({r.stderr.strip()})")
    r = run([CLI, *url, "--token-file", "/nonexistent.jwt", "presence", "chat:room"])
    check(r.returncode == 2 and "/nonexistent.jwt" in r.stderr, "an unreadable --token-file exits 2")


def test_tokens(url):
    # Expiring without --token-file: 4001, then exit 1 without reconnecting.
    short = Cli([*url, "--token", token({"sub": "eve", "exp": int(time.time()) + 2}), "sub", "chat:tok"])
    # A --token-file token about to expire, replaced in the file: refreshed, no 4001.
    t0 = int(time.time())
    tf = tempfile.NamedTemporaryFile("w", suffix=".jwt", delete=False)
    tf.write(token({"sub": "rita", "exp": t0 + 8}))  # the CLI looks at the file after ~4 s
    tf.close()
    rita = Cli([*url, "--token-file", tf.name, "sub", "chat:tok"])
    check(rita.wait_for(lambda: "rita" in (presence_users(url, "chat:tok") or [])), "sub with a short token connected")
    with open(tf.name + ".new", "w") as f:
        f.write(token({"sub": "rita", "exp": int(time.time()) + 600}))
    os.rename(tf.name + ".new", tf.name)
    try:
        rc = short.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = short.stop()
    check(rc == 1 and "(4001 token expired); not reconnecting" in short.stderr(),
          f"an expired --token ends sub with exit 1 after close 4001 ({rc}: {short.stderr().strip()!r})")
    check('"code":"token_expired"' in short.stderr(),
          "the server sent the token_expired error before the 4001 close (docs/protocol.md, refresh)")
    time.sleep(max(0, t0 + 10 - time.time()))  # rita's first token has expired by now
    check(rita.proc.poll() is None and "4001" not in rita.stderr() and "reconnect" not in rita.stderr(),
          f"--token-file: the renewed token was sent as refresh before expiry ({rita.stderr().strip()!r})")
    check("rita" in (presence_users(url, "chat:tok") or []), "and the connection is still subscribed")
    check(rita.stop() == 0, "sub exits 0")
    os.unlink(tf.name)


def mint(*args, env=None):
    """Runs `switchboard-cli token ARGS`; returns (exit status, the token or "", stderr)."""
    r = run([CLI, "token", *args], env=env)
    return r.returncode, r.stdout.strip(), r.stderr


def jwt_decode(tok, secret=SECRET):
    """The header and claims of an HS256 JWT (None, None when its signature is not
    secret's or it is not a JWT)."""
    def part(s):
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    try:
        h, p, sig = tok.split(".")
        mac = hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
        if not re.fullmatch(r"[A-Za-z0-9_-]+", sig) or part(sig) != mac:
            return None, None
        return json.loads(part(h)), json.loads(part(p))
    except ValueError:
        return None, None


def test_mint_token():
    """`token` mints JWTs that a server with anonymous access off accepts, and that it
    refuses when they have expired, are not yet valid or were signed with another secret;
    the grants it writes are the claims the server enforces."""
    proc, port = start_server({
        "log_level": "info",
        "auth": {"anonymous": False, "jwt": {"hmac_secret": SECRET, "leeway": 0}},
        "namespaces": {"chat": {"publish": "clients", "presence": True, "history_size": 10}},
    })
    url = ["--url", f"ws://127.0.0.1:{port}/ws"]

    def connects(tok, channel="chat:t"):
        return run([CLI, *url, "--token", tok, "pub", channel, '"minted"'])

    try:
        rc, tok, err = mint("--secret", SECRET, "--sub", "alice", "--ttl", "60")
        header, claims = jwt_decode(tok)
        check(rc == 0 and header == {"alg": "HS256", "typ": "JWT"},
              f"token prints an HS256 JWT signed with the secret ({rc}: {tok!r} {err.strip()!r})")
        claims = claims or {}
        check(set(claims) == {"sub", "iat", "exp"} and claims["sub"] == "alice" and
              claims["exp"] - claims["iat"] == 60 and abs(claims["iat"] - time.time()) < 5,
              f"with sub, iat and exp = iat + --ttl ({claims})")
        r = run([CLI, *url, "pub", "chat:t", "1"])
        check(r.returncode == 1 and "unauthorized" in r.stderr, "the server refuses a client without a token")
        r = connects(tok)
        check(r.returncode == 0, f"and accepts the minted token ({r.stderr.strip()!r})")
        r = run([CLI, *url, "--token", tok, "history", "chat:t"])
        check(r.returncode == 0 and [json.loads(l)["from"]["user"] for l in r.stdout.splitlines()] == ["alice"],
              f"as the token's sub ({r.stdout.strip()!r})")

        # The secret from a file (final newline dropped) or the environment; --user as sub.
        sf = write_config(SECRET + "\n")
        rc, tok2, err = mint("--secret-file", sf, "--user", "bob", "--alg", "HS512")
        os.unlink(sf)
        check(rc == 0 and json.loads(base64.urlsafe_b64decode(tok2.split(".")[0] + "==")) == {"alg": "HS512", "typ": "JWT"},
              f"--secret-file, --alg HS512 ({err.strip()!r})")
        check(connects(tok2).returncode == 0, "the server accepts it")
        env = dict(os.environ, SWITCHBOARD_JWT_SECRET=SECRET)
        rc, tok3, err = mint("--sub", "carol", "--info", '{"name":"Carol"}', env=env)
        check(rc == 0 and (jwt_decode(tok3)[1] or {}).get("info") == {"name": "Carol"},
              f"the secret from SWITCHBOARD_JWT_SECRET, --info ({err.strip()!r})")
        carol = Cli([*url, "--token", tok3, "sub", "chat:t"])
        check(carol.wait_for(lambda: run([CLI, *url, "--token", tok, "presence", "chat:t"]).stdout.count('"info":{"name":"Carol"}') == 1),
              "the server takes the user and info from it (presence)")
        check(carol.stop() == 0, "sub with the minted token exits 0")

        for args, what in [(["--ttl", "-10"], "a token that has expired (--ttl -10)"),
                           (["--nbf", "60"], "a token not valid yet (--nbf 60)"),
                           (["--secret", "another-secret"], "a token signed with another secret")]:
            rc, bad, _ = mint("--secret", SECRET, "--sub", "mallory", *args)
            r = connects(bad)
            check(rc == 0 and r.returncode == 1 and "unauthorized" in r.stderr,
                  f"the server refuses {what} ({r.returncode}: {r.stderr.strip()[-90:]!r})")

        rc, granted, _ = mint("--secret", SECRET, "--sub", "dan", "--channels", "chat:a*", "--channels", "chat:z",
                              "--publish", "chat:a1,chat:z")
        check((jwt_decode(granted)[1] or {}).get("channels") == ["chat:a*", "chat:z"] and
              jwt_decode(granted)[1].get("publish") == ["chat:a1", "chat:z"], "--channels and --publish lists")
        check(connects(granted, "chat:a1").returncode == 0, "a granted channel is open")
        r = connects(granted, "chat:a2")
        check(r.returncode == 1 and "forbidden" in r.stderr, "publishing outside the publish claim is forbidden")
        r = connects(granted, "chat:b")
        check(r.returncode == 1 and "forbidden" in r.stderr, "subscribing outside the channels claim is forbidden")
        rc, chan_tok, _ = mint("--secret", SECRET, "--sub", "dan", "--channel", "chat:a1", "--ttl", "30")
        check((jwt_decode(chan_tok)[1] or {}).get("channel") == "chat:a1", "--channel mints a channel token")
        r = connects(chan_tok)
        check(r.returncode == 1 and "unauthorized" in r.stderr, "which cannot identify a connection")

        no_env = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_JWT_SECRET"}
        rc, out, err = mint("--sub", "x", env=no_env)
        check(rc == 2 and out == "" and "no secret" in err, f"token without a secret exits 2 ({err.strip()!r})")
        for args in (["--secret", SECRET], ["--secret", SECRET, "--sub", "x", "--alg", "RS256"],
                     ["--secret", SECRET, "--sub", "x", "--info", "[1]"], ["--secret", SECRET, "--sub", "x", "stray"],
                     ["--secret", SECRET, "--secret-file", "/dev/null", "--sub", "x"]):
            rc, out, err = mint(*args)
            check(rc == 2 and out == "", f"token {' '.join(args)}: usage error, exit 2 ({err.strip()[:80]!r})")
        r = run([CLI, *url, "--ttl", "5", "sub", "chat:t"])
        check(r.returncode == 2 and "only apply to token" in r.stderr, "token options only apply to token")
    finally:
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=10) == 0, "token server exits 0 after SIGTERM")


def api_delete(port, path):
    """DELETE path with the test's API key; returns (status, decoded body or {})."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("DELETE", path, headers={"Authorization": f"Bearer {API_KEY}"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(body)
    except ValueError:
        return resp.status, {}


def test_reset(url, port):
    """A backend drops a channel's history: sub prints the reset frame and every message
    of the new epoch (offsets 1, 2, 3 again) exactly once, and a reconnect afterwards
    recovers from the new epoch. chat still prints the echo of each line."""
    def pub(channel, i):
        r = run([CLI, *url, "pub", channel, json.dumps({"n": i})])
        return json.loads(r.stdout) if r.returncode == 0 else {}

    sub = Cli([*url, "--user", "watcher", "sub", "chat:reset"])
    check(sub.wait_for(lambda: "watcher" in (presence_users(url, "chat:reset") or [])), "sub subscribed to chat:reset")
    acks = [pub("chat:reset", i) for i in range(3)]
    check(sub.wait_for(lambda: len(sub.frames()) == 3), "sub printed the first 3 messages")
    status, body = api_delete(port, "/api/v1/channels/chat:reset/messages")
    epoch = body.get("epoch")
    check(status == 200 and body.get("offset") == 0 and epoch and epoch != acks[0].get("epoch"),
          f"DELETE /api/v1/channels/chat:reset/messages: a new epoch ({status} {body})")
    acks += [pub("chat:reset", i) for i in range(3, 6)]
    check([a.get("offset") for a in acks] == [1, 2, 3, 1, 2, 3], f"offsets start again at 1 ({[a.get('offset') for a in acks]})")
    check(sub.wait_for(lambda: len(sub.frames()) == 6),
          f"sub printed the 3 messages after the reset too ({len(sub.frames())}: {sub.stderr().strip()!r})")
    time.sleep(0.3)
    check([m["data"]["n"] for m in sub.frames()] == list(range(6)), "each of the 6 messages exactly once, in order")
    check(sub.frames("reset") == [{"type": "reset", "channel": "chat:reset", "offset": 0, "epoch": epoch}],
          f"sub prints the reset frame as one JSON line ({sub.frames('reset')})")
    order = [f["type"] for f in map(json.loads, list(sub.out)) if f["type"] in ("message", "reset")]
    check(order == ["message"] * 3 + ["reset"] + ["message"] * 3, f"between the old epoch and the new one ({order})")
    check("second copy" not in sub.stderr(), "no message taken for a second copy")

    # A reconnect resumes from the new epoch's offset 3.
    sub.proc.send_signal(signal.SIGSTOP)
    try:
        check(sub.wait_for(lambda: presence_users(url, "chat:reset") == [], 15), "the stopped sub was dropped")
        acks = [pub("chat:reset", i) for i in range(6, 8)]
    finally:
        sub.proc.send_signal(signal.SIGCONT)
    check(sub.wait_for(lambda: "chat:reset recovered 2 missed messages" in sub.stderr(), 15),
          f"sub reconnects and recovers the 2 messages from the new epoch ({sub.stderr().strip()!r})")
    check(sub.wait_for(lambda: len(sub.frames()) == 8) and
          [m["data"]["n"] for m in sub.frames()] == list(range(8)), "and prints them once")
    check(sub.stop() == 0, "sub exits 0")

    # chat: the echo of a line sent after a reset is printed before it exits.
    with subprocess.Popen([CLI, *url, "--user", "chatter", "chat", "chat:reset2"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        p.stdin.write(b"one\ntwo\n")
        p.stdin.flush()
        echoed = read_until(p.stdout, b"chatter: two")
        status, _ = api_delete(port, "/api/v1/channels/chat:reset2/messages")
        told = read_until(p.stderr, b"was reset")
        p.stdin.write(b"three\n")
        p.stdin.close()
        rc = wait_exit(p)
        out = p.stdout.read().decode()
    check(echoed and status == 200 and told, "chat says on stderr that the channel was reset")
    check(rc == 0 and "chatter: three" in out, f"chat prints the echo of the line after the reset, exits 0 ({rc}: {out!r})")


def test_reconnect(url, server):
    """sub is stopped (SIGSTOP) past the server's idle timeout: the server drops it. Five
    messages are published meanwhile; once continued, sub reconnects, recovers and prints
    each of them exactly once."""
    sub = Cli([*url, "--user", "sleeper", "sub", "chat:rec", "chat:rec2"])
    check(sub.wait_for(lambda: "sleeper" in (presence_users(url, "chat:rec") or [])), "sub subscribed")
    r = run([CLI, *url, "pub", "chat:rec", '"before"'])
    check(sub.wait_for(lambda: len(sub.frames()) == 1), "sub printed the first message")
    sub.proc.send_signal(signal.SIGSTOP)
    try:
        dropped = sub.wait_for(lambda: presence_users(url, "chat:rec") == [], 15)
        check(dropped, "the server dropped the stopped sub (idle_timeout)")
        published = []
        for i in range(5):
            r = run([CLI, *url, "pub", "chat:rec", json.dumps({"missed": i})])
            published.append(json.loads(r.stdout)["offset"] if r.returncode == 0 else None)
        check(published == [2, 3, 4, 5, 6], f"5 messages published while sub was stopped ({published})")
    finally:
        sub.proc.send_signal(signal.SIGCONT)
    check(sub.wait_for(lambda: "recovered 5 missed messages" in sub.stderr(), 15),
          f"sub reconnects and says it recovered 5 messages ({sub.stderr().strip()!r})")
    # chat:rec2 never had a message: whether its state (epoch) survived is the server's
    # business, but sub must say what happened to it too.
    check(re.search(r"reconnected; chat:rec2 (recovered 0 missed messages|could not be recovered)", sub.stderr()),
          "sub reports on every channel")
    check(sub.wait_for(lambda: len(sub.frames()) == 6), "sub printed the missed messages")
    r = run([CLI, *url, "pub", "chat:rec", '"after"'])
    check(sub.wait_for(lambda: len(sub.frames()) == 7), "and a message published after the reconnect")
    time.sleep(0.3)
    msgs = sub.frames()
    check([m["offset"] for m in msgs] == [1, 2, 3, 4, 5, 6, 7], f"each offset once, in order ({[m['offset'] for m in msgs]})")
    check([m["data"] for m in msgs[1:6]] == [{"missed": i} for i in range(5)], "the missed data")
    check("second copy" not in sub.stderr(), "the server sent no duplicate")

    # A drain (SIGTERM, 4012 "server restart"; a lone client goes at once): sub says it
    # reconnects, and SIGINT while it waits exits 0.
    server.send_signal(signal.SIGTERM)
    check(server.wait(timeout=10) == 0, "second server exits 0 after SIGTERM")
    check(sub.wait_for(lambda: "4012" in sub.stderr() and "reconnecting in" in sub.stderr()),
          "sub reports the shutdown and reconnects")
    check(sub.wait_for(lambda: sub.stderr().count("reconnecting in") >= 2, 5), "and retries the refused connection")
    rc = sub.stop()
    check(rc == 0, f"sub exits 0 on SIGINT while reconnecting (got {rc})")


def main():
    test_server_command_line()
    test_mint_token()
    proc, port = start_server({"log_level": "info", "namespaces": {"ticks": {"publish": "none"}}})
    try:
        test_client(port)
    finally:
        sbproc.stop(proc, timeout=10)

    # Presence, history, tokens, reconnection: a short idle timeout, so that a stopped
    # client is dropped quickly, and token expiry without leeway.
    proc, port = start_server({
        "log_level": "info",
        "websocket": {"ping_interval": 1, "idle_timeout": 2},
        "auth": {"anonymous": True, "jwt": {"hmac_secret": SECRET, "leeway": 0}},
        "api_keys": [{"name": "e2e", "key": API_KEY}],
        "namespaces": {
            "chat": {"publish": "clients", "presence": True, "join_leave": True, "history_size": 100,
                     "history_ttl": 600},
            "plain": {"publish": "clients"},
        },
    })
    url = ["--url", f"ws://127.0.0.1:{port}/ws"]
    try:
        test_presence_history(url)
        test_tokens(url)
        test_reset(url, port)
        test_reconnect(url, proc)
    finally:
        sbproc.kill_if_running(proc)
    print(f"cli_e2e: {len(FAILS)} failed", flush=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
