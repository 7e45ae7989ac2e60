#!/usr/bin/python3
"""The edge of the server against third-party clients (Python websockets, curl):
allowed_origins, limits.max_connections_per_ip, and TLS (wss and HTTPS on one port with
a self-signed certificate generated here). Bounded in time.

usage: edge_e2e.py PATH/TO/switchboard
"""
import asyncio
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile

import websockets

import sbproc
from rawws import raw_status, upgrade_request
from sbproc import check, stop

BINARY = sys.argv[1]


def start_server(config):
    return sbproc.start(BINARY, config)


async def status_of(url, origin=None):
    """The status line code of a WebSocket upgrade request (101 when it upgrades)."""
    m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
    return await raw_status(m.group(1), int(m.group(2)),
                            upgrade_request(m.group(3), origin, host=m.group(1)))


async def origins(port):
    url = f"ws://127.0.0.1:{port}/ws"
    check(await status_of(url, origin="https://app.example") == 101, "allowed origin upgrades")
    check(await status_of(url, origin="https://evil.example") == 403, "other origin gets 403 before the upgrade")
    check(await status_of(url) == 101, "no Origin (not a browser) upgrades")


async def per_ip(port):
    url = f"ws://127.0.0.1:{port}/ws"
    held = [await websockets.connect(url) for _ in range(3)]
    check(await status_of(url) == 503, "4th connection from one address gets 503")
    await held[0].close()
    await asyncio.sleep(0.2)
    check(await status_of(url) == 101, "a slot freed by a close is usable again")
    for ws in held[1:]:
        await ws.close()


async def content_length(port):
    head = ("POST /api/v1/channels/c/messages HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer sk_edge_1\r\nContent-Type: application/json\r\n")
    body = '{"data":1}'
    for cl, want in [("abc", 400), ("-1", 400), ("10\r\nContent-Length: 100", 400), (str(len(body)), 201)]:
        code = await raw_status("127.0.0.1", port, head + f"Content-Length: {cl}\r\n\r\n" + body)
        check(code == want, f"Content-Length {cl.splitlines()[0]!r}{' twice' if '100' in cl else ''} -> {want} (got {code})")


async def rate(port):
    url = f"ws://127.0.0.1:{port}/ws"
    codes = [await status_of(url) for _ in range(3)]
    check(codes == [101, 101, 429], f"3rd upgrade within a second past a burst of 2 gets 429 ({codes})")
    await asyncio.sleep(1.2)
    check(await status_of(url) == 101, "the address may connect again after the refill")


async def tls(port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    async with websockets.connect(f"wss://127.0.0.1:{port}/ws", ssl=ctx) as ws:
        await ws.send('{"type":"connect","id":1,"user":"t"}')
        f = json.loads(await asyncio.wait_for(ws.recv(), 5))
        check(f["type"] == "connected", "wss: connect works over TLS with the test certificate")
        await ws.send('{"type":"subscribe","id":2,"channel":"s"}')
        await asyncio.wait_for(ws.recv(), 5)
        await ws.send('{"type":"publish","id":3,"channel":"s","data":{"x":1}}')
        f = json.loads(await asyncio.wait_for(ws.recv(), 5))
        check(f.get("type") == "message" and f["data"] == {"x": 1}, "wss: a message comes back")


def main():
    proc, port = start_server({"allowed_origins": ["https://app.example"], "limits": {"max_connections_per_ip": 3},
                        "api_keys": [{"name": "edge", "key": "sk_edge_1"}]})
    try:
        asyncio.run(asyncio.wait_for(origins(port), 30))
        asyncio.run(asyncio.wait_for(per_ip(port), 30))
        asyncio.run(asyncio.wait_for(content_length(port), 30))
    finally:
        stop(proc)

    proc, port = start_server({"limits": {"connection_rate_per_ip": {"per_second": 1, "burst": 2}}})
    try:
        asyncio.run(asyncio.wait_for(rate(port), 30))
    finally:
        stop(proc)

    d = tempfile.mkdtemp()
    crt, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    proc, port = start_server({"tls": {"cert": crt, "key": key}})
    try:
        asyncio.run(asyncio.wait_for(tls(port, crt), 30))
        r = subprocess.run(["curl", "-s", "--cacert", crt, "-w", " %{http_code} %{http_version}",
                            f"https://127.0.0.1:{port}/healthz"], capture_output=True, text=True, timeout=10)
        check(r.stdout.endswith(" 200 1.1") and '"status":"ok"' in r.stdout,
              f"HTTPS /healthz answers over HTTP/1.1 ({r.stdout})")
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            f"http://127.0.0.1:{port}/healthz"], capture_output=True, text=True, timeout=10)
        check(r.stdout != "200", f"plain HTTP is not served on the TLS port ({r.stdout})")
    finally:
        stop(proc)
    return sbproc.summary()


if __name__ == "__main__":
    sys.exit(main())
