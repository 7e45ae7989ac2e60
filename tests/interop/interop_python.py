#!/usr/bin/python3
"""Interop test: the real switchboard binary driven by Python's `websockets` library
(Debian python3-websockets), a client nobody on this project wrote.

usage: interop_python.py PATH/TO/switchboard
Starts the server on 127.0.0.1 with a free port, checks the protocol end to end, sends
SIGTERM and checks every client is closed with 4012 (a 2 s drain) and the server exits 0.
"""
import asyncio
import json
import signal
import sys

import websockets

import sbproc
from sbproc import FAILS, check


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def reply(ws, want_id, timeout=5):
    """Next frame with this id (messages in between are skipped)."""
    while True:
        f = await recv_json(ws, timeout)
        if f.get("id") == want_id:
            return f


async def connect(url, user, **kw):
    ws = await websockets.connect(url, **kw)
    await ws.send(json.dumps({"type": "connect", "id": 0, "user": user}))
    f = await recv_json(ws)
    assert f["type"] == "connected", f
    return ws, f


async def main(port):
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        await websockets.connect(f"ws://[::1]:{port}/ws", open_timeout=2)
        check(False, "--host 127.0.0.1 does not listen on ::1")
    except OSError:
        check(True, "--host 127.0.0.1 does not listen on ::1")
    subs = []
    for i in range(5):
        ws, _ = await connect(url, f"sub{i}", subprotocols=["switchboard.v1"] if i % 2 else None)
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "chat:lobby"}))
        f = await reply(ws, 1)
        check(f["type"] == "subscribed", f"sub{i} subscribed")
        subs.append(ws)
    pub, hello = await connect(url, "pub")
    check(hello["server"].startswith("switchboard/"), "connected names the server")
    await pub.send(json.dumps({"type": "subscribe", "id": 1, "channel": "chat:lobby"}))
    await reply(pub, 1)

    n = 300
    raw = '{"text":"h\\u00e9llo \\"q\\"","p":0.1,"big":1e2,"list":[1,2,{"x":null}]}'
    for i in range(n):
        await pub.send('{"type":"publish","id":%d,"channel":"chat:lobby","data":%s}' % (100 + i, raw))
    acks = 0
    for ws in subs:
        offsets = []
        exact = True
        while len(offsets) < n:
            text = await asyncio.wait_for(ws.recv(), 5)
            f = json.loads(text)
            if f["type"] != "message":
                continue
            offsets.append(f["offset"])
            exact = exact and ('"data":' + raw + ',') in text and f["from"]["user"] == "pub"
        check(offsets == list(range(offsets[0], offsets[0] + n)), "offsets +1, no gap, no duplicate")
        check(exact, "data delivered byte for byte")
    seen = 0
    while acks < n:
        f = await recv_json(pub)
        if f["type"] == "published":
            acks += 1
        elif f["type"] == "message":
            seen += 1
    check(acks == n, f"publisher got {n} acks")

    # Errors keep the connection open.
    for frame, code in [("nope", "bad_request"), ('{"type":"fly","id":"e1"}', "unknown_type"),
                        ('{"type":"subscribe","id":"e2","channel":"bad channel"}', "invalid_channel"),
                        ('{"type":"unsubscribe","id":"e3","channel":"zzz"}', "not_subscribed"),
                        ('{"type":"publish","id":"e4","channel":"other","data":1}', "forbidden")]:
        await pub.send(frame)
        while True:
            f = await recv_json(pub)
            if f["type"] == "error":
                break
        check(f["code"] == code, f"{frame[:30]} -> {code} (got {f['code']})")
    await pub.send('{"type":"ping","id":"p"}')
    check((await reply(pub, "p"))["type"] == "pong", "still served after errors")

    # A binary frame and an oversized message close only that client.
    bad, _ = await connect(url, "bad")
    await bad.send(b"\x01\x02")
    try:
        await asyncio.wait_for(bad.recv(), 5)
        check(False, "binary frame closes with 1003")
    except websockets.ConnectionClosed as e:
        check(e.rcvd is not None and e.rcvd.code == 1003, f"binary frame closes with 1003 (got {e.rcvd})")
    big, _ = await connect(url, "big", max_size=None)
    await big.send('{"type":"ping","pad":"' + "x" * 70000 + '"}')
    try:
        await asyncio.wait_for(big.recv(), 5)
        check(False, "message over 64 KiB closes with 1009")
    except websockets.ConnectionClosed as e:
        check(e.rcvd is not None and e.rcvd.code == 1009, f"oversized message closes with 1009 (got {e.rcvd})")
    await pub.send('{"type":"ping","id":"p2"}')
    check((await reply(pub, "p2"))["type"] == "pong", "others still served after bad clients")
    return subs + [pub]


async def shutdown(proc, clients):
    proc.send_signal(signal.SIGTERM)
    codes = []
    for ws in clients:
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as e:
            codes.append(e.rcvd.code if e.rcvd else None)
    check(codes == [4012] * len(clients),
          f"SIGTERM drains: every client is closed with 4012 (got {codes})")


def run(binary):
    proc, port = sbproc.start(binary, {"log_level": "info", "drain_period": 2}, echo=True)
    try:
        async def all_():
            clients = await main(port)
            await shutdown(proc, clients)
        asyncio.run(asyncio.wait_for(all_(), 60))
        rc = proc.wait(timeout=10)
        check(rc == 0, f"server exits 0 after SIGTERM (got {rc})")
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"interop_python: {len(FAILS)} failed", flush=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
