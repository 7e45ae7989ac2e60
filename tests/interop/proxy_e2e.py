#!/usr/bin/python3
"""Switchboard behind Debian's nginx (docs/deployment.md): with trusted_proxies the
per-address limits count each client by the address nginx puts in X-Forwarded-For, so
one client at its limit does not lock out the others; without it every client counts as
nginx's address; and neither a client talking to the server directly nor one going
through nginx can choose the address it is counted under.

Clients are Python websockets connecting from different loopback source addresses
(127.0.0.2, 127.0.0.3, ...). nginx is started here, in the foreground, with its own
configuration, logs and pid in a temporary directory, on a free loopback port, and is
stopped by its pid. Exits 77 (skipped) when nginx is not installed.

usage: proxy_e2e.py PATH/TO/switchboard
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import websockets

import sbproc
from rawws import raw_status, upgrade_request
from sbproc import check, stop

BINARY = sys.argv[1]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
IDLE_TIMEOUT = 60  # websocket.idle_timeout: nginx's proxy_read_timeout must be above it

# The proxy part is the one docs/deployment.md shows, on a loopback port.
NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;

events {{
    worker_connections 256;
}}

http {{
    access_log off;
{temp_paths}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    upstream switchboard {{
        server 127.0.0.1:{upstream};
    }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            proxy_pass http://switchboard;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Forwarded "";
            proxy_read_timeout {read_timeout}s;
            proxy_send_timeout {read_timeout}s;
        }}
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def temp_paths(d):
    """Debian's nginx has absolute temp paths compiled in; each module it was built with
    gets one in d instead (a directive of a module it lacks would be refused)."""
    built = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
    lines = [f"    client_body_temp_path {d}/client_body;", f"    proxy_temp_path {d}/proxy;"]
    for mod in ("fastcgi", "uwsgi", "scgi"):
        if f"--without-http_{mod}_module" not in built:
            lines.append(f"    {mod}_temp_path {d}/{mod};")
    return "\n".join(lines)


def start_nginx(upstream):
    d = tempfile.mkdtemp(prefix="sb-nginx-")
    os.chmod(d, 0o755)  # nginx's worker may run as nobody when the test runs as root
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port, upstream=upstream, temp_paths=temp_paths(d),
                                  read_timeout=2 * IDLE_TIMEOUT))
    log = os.path.join(d, "error.log")
    proc = subprocess.Popen([NGINX, "-e", log, "-p", d + "/", "-c", os.path.join(d, "nginx.conf")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port, d
        except OSError:
            time.sleep(0.05)
    stop_nginx(proc, d)
    with open(log) as f:
        sys.exit(f"nginx did not start on port {port}:\n{f.read()[-2000:]}")


def stop_nginx(proc, d):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # fast shutdown; the master ends its worker
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session, started above
            proc.wait()
    shutil.rmtree(d, ignore_errors=True)


async def status_of(port, source, headers=""):
    """The status code of an upgrade request to 127.0.0.1:port sent from source."""
    return await raw_status("127.0.0.1", port, upgrade_request(extra=headers),
                            local_addr=(source, 0))


async def client(port, source, headers=None):
    """An open WebSocket from source that has completed a connect."""
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", local_addr=(source, 0),
                                  extra_headers=headers or {}, open_timeout=5)
    await ws.send('{"type":"connect","id":1}')
    reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
    if reply.get("type") != "connected":
        raise RuntimeError(f"connect from {source} answered {reply}")
    return ws


async def refused_log(proc, address):
    """True once the server has logged a per-address refusal of address."""
    want = f"refusing upgrade from {address}: limits.max_connections_per_ip"
    for _ in range(40):
        if any(want in line for line in proc.log_lines):
            return True
        await asyncio.sleep(0.05)
    return False


async def behind_trusted_nginx(proc, nginx_port):
    held = [await client(nginx_port, "127.0.0.2") for _ in range(2)]
    check(True, "trusted: two clients from 127.0.0.2 connect through nginx")
    code = await status_of(nginx_port, "127.0.0.2")
    check(code == 503, f"trusted: a third from 127.0.0.2 is refused with 503 (got {code})")
    check(await refused_log(proc, "127.0.0.2"), "trusted: the server logs the refusal under 127.0.0.2")
    held.append(await client(nginx_port, "127.0.0.3"))
    check(True, "trusted: 127.0.0.3 still connects through nginx while 127.0.0.2 is at its limit")
    held.append(await client(nginx_port, "127.0.0.3"))
    code = await status_of(nginx_port, "127.0.0.3")
    check(code == 503, f"trusted: 127.0.0.3 has its own limit of 2 (third: {code})")

    # A client at its limit cannot get more slots by writing other addresses itself:
    # nginx appends the real one, and the walk from the right stops there.
    code = await status_of(nginx_port, "127.0.0.2", "X-Forwarded-For: 198.51.100.1\r\n")
    check(code == 503, f"trusted: a spoofed X-Forwarded-For through nginx is still 127.0.0.2 ({code})")
    code = await status_of(nginx_port, "127.0.0.2", "X-Forwarded-For: 127.0.0.1, 10.0.0.1\r\n")
    check(code == 503, f"trusted: claiming to be a proxy itself changes nothing ({code})")
    code = await status_of(nginx_port, "127.0.0.2", "Forwarded: for=198.51.100.2\r\n")
    check(code == 503, f"trusted: a Forwarded header from the client is dropped by nginx ({code})")

    await held[0].close()
    await asyncio.sleep(0.2)
    held[0] = await client(nginx_port, "127.0.0.2")
    check(True, "trusted: a slot freed by a close is usable again by 127.0.0.2")
    for ws in held:
        await ws.close()


async def behind_untrusted_nginx(proc, nginx_port):
    held = [await client(nginx_port, "127.0.0.2") for _ in range(2)]
    code = await status_of(nginx_port, "127.0.0.3")
    check(code == 503, f"untrusted: 127.0.0.3 is refused too, everyone is nginx's 127.0.0.1 ({code})")
    check(await refused_log(proc, "127.0.0.1"), "untrusted: the server logs the refusal under 127.0.0.1")
    for ws in held:
        await ws.close()


async def direct_spoofing(proc, sb_port):
    held = [await client(sb_port, "127.0.0.4", {"X-Forwarded-For": xff}) for xff in ("203.0.113.1", "203.0.113.2")]
    check(True, "direct: two clients from 127.0.0.4 with made-up X-Forwarded-For connect")
    code = await status_of(sb_port, "127.0.0.4", "X-Forwarded-For: 203.0.113.3\r\n")
    check(code == 503, f"direct: the third is refused, X-Forwarded-For from an untrusted peer is ignored ({code})")
    code = await status_of(sb_port, "127.0.0.4", "Forwarded: for=203.0.113.4\r\n")
    check(code == 503, f"direct: so is Forwarded ({code})")
    check(await refused_log(proc, "127.0.0.4"), "direct: the server logs the refusal under 127.0.0.4")
    for ws in held:
        await ws.close()


def main():
    if NGINX is None:
        print("SKIP: nginx is not installed (scripts/install-deps.sh --test installs nginx-light)")
        return 77
    limits = {"max_connections_per_ip": 2}
    config = {"limits": limits, "websocket": {"idle_timeout": IDLE_TIMEOUT}}

    proc, sb_port = sbproc.start(BINARY, dict(config, trusted_proxies=["127.0.0.1"]))
    nginx, nginx_port, d = start_nginx(sb_port)
    try:
        asyncio.run(asyncio.wait_for(behind_trusted_nginx(proc, nginx_port), 60))
        asyncio.run(asyncio.wait_for(direct_spoofing(proc, sb_port), 60))
    finally:
        stop_nginx(nginx, d)
        stop(proc)

    proc, sb_port = sbproc.start(BINARY, config)
    nginx, nginx_port, d = start_nginx(sb_port)
    try:
        asyncio.run(asyncio.wait_for(behind_untrusted_nginx(proc, nginx_port), 60))
    finally:
        stop_nginx(nginx, d)
        stop(proc)
    return sbproc.summary()


if __name__ == "__main__":
    sys.exit(main())
