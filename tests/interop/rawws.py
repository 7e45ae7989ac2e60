"""Raw WebSocket bytes for the end-to-end tests that talk to the server over a plain
socket (RFC 6455): the upgrade request, client frames, and the status a raw request
gets."""
import asyncio
import os
import struct


def upgrade_request(path="/ws", origin=None, key="dGhlIHNhbXBsZSBub25jZQ==", host="127.0.0.1",
                    extra=""):
    """The text of an upgrade request for path, with Origin when origin is given and the
    header lines extra (each ending in CRLF) last."""
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
    if origin:
        req += f"Origin: {origin}\r\n"
    return req + extra + "\r\n"


def ws_frame(opcode, payload, mask=True, fin=True):
    """One RFC 6455 frame; masked (a fresh random key) unless mask is False."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def raw_status(host, port, request, local_addr=None):
    """The status code of the answer to request (the whole text of an HTTP request, such
    as an upgrade_request()) sent as is to host:port from local_addr (None: any), 0 if
    the answer is not HTTP. Raw because lws answers refused upgrades as HTTP/1.0, which
    websockets will not parse."""
    reader, writer = await asyncio.open_connection(host, port, local_addr=local_addr)
    writer.write(request.encode())
    line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return int(line.split()[1]) if line.startswith(b"HTTP/1.") else 0
