#!/usr/bin/python3
"""Operations end to end (issue 9): the switchboard binary as an operator runs it.

usage: ops_e2e.py PATH/TO/switchboard
- --host: a name resolves (localhost), while an empty, invalid or unresolvable host exits
  1 at once with a message instead of running with no socket;
- --check-config: prints the effective configuration with secrets masked (exit 0), or
  names the problem (exit 2); keys in any order;
- the environment (SWITCHBOARD_CONFIG, _HOST, _PORT, _LOG_LEVEL, _LOG_FORMAT) between the
  file and the flags; --log-format json writes one JSON object a line;
- SIGHUP re-reads a renewed TLS certificate (same paths), and keeps the running one when
  the new files do not match.
Loopback only; every wait is bounded."""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sbproc import check, make_cert, run_all  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
TMP = tempfile.mkdtemp(prefix="sb-ops-")


def write(name, obj):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def run(args, env=None, timeout=10):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def start(args, env=None):
    """Starts the server (args must include a port 0); returns (proc, port, lines)."""
    proc = subprocess.Popen([BIN, *args], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    lines = []
    deadline = time.time() + 10
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening on \S+?:(\d+)", line)
        if m:
            return proc, int(m.group(1)), lines
    proc.kill()
    return None, None, lines


def stop(proc, what):
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "killed"
    check(rc == 0, f"{what}: exits 0 after SIGTERM (got {rc})")


def connects(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def test_hosts():
    proc, port, _ = start(["--host", "localhost", "--port", "0"])
    check(proc is not None and connects("127.0.0.1", port), "--host localhost listens on 127.0.0.1")
    if proc:
        stop(proc, "--host localhost")
    for host in ["", "256.1.1.1", "no-such-host.invalid", "[not-v6]", "192.0.2.1"]:
        t = time.time()
        r = run(["--host", host, "--port", "0"])
        check(r.returncode == 1 and time.time() - t < 5 and "listening" not in r.stderr
              and "server:" in r.stderr,
              f"--host {host!r} exits 1 without claiming to listen ({r.returncode}: {r.stderr.strip()[-160:]!r})")


def test_check_config():
    os.environ["SB_OPS_KEY"] = "sk_from_the_environment"
    secret = write("jwt.secret", "a-secret-from-a-file-0123456789abcdef\n")
    good = write("good.json", '{"webhooks": [], "allowed_origins": ["https://a.example"], '
                 '"api_keys": [{"key": {"env": "SB_OPS_KEY"}, "name": "backend"}], '
                 '"auth": {"jwt": {"hmac_secret": {"file": "%s"}}}, "drain_period": 3}' % secret)
    r = run(["--check-config", good])
    try:
        eff = json.loads(r.stdout)
    except ValueError:
        eff = {}
    check(r.returncode == 0 and "configuration OK" in r.stderr, f"--check-config accepts a valid file ({r.returncode}: {r.stderr.strip()!r})")
    check(eff.get("drain_period") == 3 and eff.get("allowed_origins") == ["https://a.example"]
          and eff.get("webhooks") == [], "the effective configuration is printed as JSON")
    check("sk_from_the_environment" not in r.stdout and "a-secret-from-a-file" not in r.stdout
          and eff.get("api_keys", [{}])[0].get("key") == "********",
          "secrets are masked")
    bad = write("bad.json", '{"limits": {"max_conections": 1}}')
    r = run(["--check-config", bad])
    check(r.returncode == 2 and "limits.max_conections: unknown key" in r.stderr and bad in r.stderr,
          f"--check-config names the bad key and the file, exit 2 ({r.returncode}: {r.stderr.strip()!r})")
    hook = write("hook.json", '{"webhooks": [{"url": "ftp://x/"}]}')
    r = run(["--check-config", hook])
    check(r.returncode == 2 and hook in r.stderr and "webhooks[0].url" in r.stderr,
          f"webhook errors name the file too ({r.stderr.strip()!r})")
    r = run(["--check-config", good], env={"SB_OPS_KEY": ""})
    check(r.returncode == 2 and "api_keys[0].key: must not be empty" in r.stderr,
          f"an empty secret from the environment is refused ({r.stderr.strip()!r})")


def test_environment():
    cfg = write("env.json", {"host": "127.0.0.9", "port": 1, "log_level": "error"})
    # The file says 127.0.0.9 port 1 at error level; the environment overrides host and
    # port; the flag overrides the environment's level.
    env = {"SWITCHBOARD_CONFIG": cfg, "SWITCHBOARD_HOST": "127.0.0.1", "SWITCHBOARD_PORT": "0",
           "SWITCHBOARD_LOG_LEVEL": "warn", "SWITCHBOARD_LOG_FORMAT": "json"}
    proc, port, lines = start(["--log-level", "info"], env=env)
    check(proc is not None and connects("127.0.0.1", port),
          "SWITCHBOARD_CONFIG, _HOST and _PORT apply over the file")
    if proc:
        stop(proc, "environment")
        rest = proc.stderr.read()
        all_lines = [ln for ln in lines + rest.splitlines() if ln.strip()]
        parsed = []
        for ln in all_lines:
            try:
                parsed.append(json.loads(ln))
            except ValueError:
                parsed.append(None)
        check(all_lines and all(p is not None and {"time", "level", "msg"} <= set(p) for p in parsed),
              f"SWITCHBOARD_LOG_FORMAT=json: every line is a JSON object ({all_lines[:2]})")
        check(any(p and p["level"] == "info" for p in parsed), "--log-level info beats SWITCHBOARD_LOG_LEVEL")
    r = run(["--port", "0"], env={"SWITCHBOARD_PORT": "99999"})
    check(r.returncode == 2 and "SWITCHBOARD_PORT" in r.stderr, f"a bad SWITCHBOARD_PORT is named, exit 2 ({r.stderr.strip()!r})")


def served_cn(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            der = t.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                         capture_output=True).stdout.decode()
    m = re.search(r"CN\s*=\s*(\S+)", out)
    return m.group(1) if m else out


def test_tls_reload():
    a_crt, a_key = make_cert(TMP, "first", 2)
    b_crt, b_key = make_cert(TMP, "second", 2)
    live_crt, live_key = os.path.join(TMP, "live.crt"), os.path.join(TMP, "live.key")
    for src, dst in ((a_crt, live_crt), (a_key, live_key)):
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
    cfg = write("tls.json", {"tls": {"cert": live_crt, "key": live_key}})
    proc, port, lines = start(["--config", cfg, "--host", "127.0.0.1", "--port", "0"])
    if proc is None:
        check(False, f"TLS server starts ({lines[-3:]})")
        return
    check(served_cn(port) == "first", "the first certificate is served")
    # A renewal: new files under the same names, then SIGHUP.
    for src, dst in ((b_crt, live_crt), (b_key, live_key)):
        with open(src, "rb") as f, open(dst + ".new", "wb") as g:
            g.write(f.read())
        os.replace(dst + ".new", dst)
    proc.send_signal(signal.SIGHUP)
    ok = False
    for _ in range(50):
        time.sleep(0.1)
        if served_cn(port) == "second":
            ok = True
            break
    check(ok, "after SIGHUP the renewed certificate is served")
    # A key that does not match the certificate: refused, the running one stays.
    with open(a_key, "rb") as f, open(live_key, "wb") as g:
        g.write(f.read())
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check(served_cn(port) == "second", "a mismatched key on SIGHUP keeps the running certificate")
    stop(proc, "TLS")
    log = "".join(lines) + proc.stderr.read()
    check("not reloaded, the running configuration stays" in log and "tls.key" in log,
          "the refused reload is logged with its reason")


def post_split(port, key, pause):
    """POSTs a message with its body sent in two halves and pause() run between them;
    returns the status line."""
    body = b'{"data":{"n":1}}'
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /api/v1/channels/r/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
              + key.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body[:5])
    pause()
    s.sendall(body[5:])
    data = s.recv(4096)
    s.close()
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def test_reload_with_requests_in_flight():
    keys = [{"name": "backend", "key": "sk_ops_1"}]
    cfg = write("keys.json", {"api_keys": keys})
    proc, port, _ = start(["--config", cfg, "--host", "127.0.0.1", "--port", "0"])
    if proc is None:
        check(False, "server with API keys starts")
        return

    def hup():
        time.sleep(0.3)  # the request's head is read before the reload
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
    line = post_split(port, "sk_ops_1", hup)
    check(line == "HTTP/1.1 201 Created",
          f"a POST whose body spans a SIGHUP that changes no key succeeds ({line})")
    write("keys.json", {"api_keys": keys + [{"name": "second", "key": "sk_ops_2"}]})
    line = post_split(port, "sk_ops_1", hup)
    check(line == "HTTP/1.1 503 Service Unavailable",
          f"one whose keys changed meanwhile is answered 503, to be sent again ({line})")
    line = post_split(port, "sk_ops_2", lambda: None)
    check(line == "HTTP/1.1 201 Created", f"the added key works ({line})")
    stop(proc, "reload with requests in flight")


def main():
    return run_all((test_hosts, test_check_config, test_environment, test_tls_reload,
                    test_reload_with_requests_in_flight))


if __name__ == "__main__":
    sys.exit(main())
