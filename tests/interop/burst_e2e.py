#!/usr/bin/env python3
"""Bursts of publishes from many connections at once, plain and over TLS: subscribers
that read as fast as they can must get every message and never be closed as slow
consumers. (A loop that read far more input than it wrote before flushing once closed
them with 4008: 8 publishers x 5,000 messages, or one TLS publisher x 5,000.)

usage: burst_e2e.py SWITCHBOARD
"""
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

from rawws import upgrade_request
from sbproc import check, start, stop, summary

BINARY = sys.argv[1]


def frame(payload):
    """A masked client text frame (mask key 0: the payload goes as is)."""
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + struct.pack(">H", n)
    return head + b"\0\0\0\0" + payload


class Conn:
    def __init__(self, port, tls):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s)
        s.sendall(upgrade_request(host="x").encode())
        self.s, self.buf = s, b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += s.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert b" 101 " in head.split(b"\r\n")[0], head

    def send(self, obj):
        self.s.sendall(frame(json.dumps(obj).encode()))

    def next(self):
        """(opcode, payload) of the next server frame."""
        while True:
            if len(self.buf) >= 2:
                n, off = self.buf[1] & 0x7f, 2
                if n == 126 and len(self.buf) >= 4:
                    n, off = struct.unpack(">H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
                if n < 126 and len(self.buf) >= off + n:
                    op, p = self.buf[0] & 0x0f, self.buf[off:off + n]
                    self.buf = self.buf[off + n:]
                    return op, p
            chunk = self.s.recv(262144)
            if not chunk:
                return None, b""
            self.buf += chunk

    def reply(self):
        return json.loads(self.next()[1])


def run(port, tls, publishers, per_pub):
    what = f"{'wss' if tls else 'ws'}: {publishers} publishers x {per_pub} messages at once"
    subs = []
    for _ in range(2):
        c = Conn(port, tls)
        c.send({"type": "connect", "id": 1})
        c.reply()
        c.send({"type": "subscribe", "id": 2, "channel": "burst"})
        c.reply()
        subs.append(c)
    got, closes = [0, 0], [None, None]
    want = publishers * per_pub

    def read(k):
        try:
            while got[k] < want:
                op, p = subs[k].next()
                if op == 1 and b'"type":"message"' in p:
                    got[k] += 1
                elif op != 1:
                    closes[k] = (op, p[:2] and struct.unpack(">H", p[:2])[0])
                    return
        except OSError as e:
            closes[k] = repr(e)

    pubs = []
    for _ in range(publishers):
        c = Conn(port, tls)
        c.send({"type": "connect", "id": 1})
        c.reply()
        pubs.append(c)
    readers = [threading.Thread(target=read, args=(k,), daemon=True) for k in range(2)]
    for t in readers:
        t.start()
    blobs = [b"".join(frame(json.dumps({"type": "publish", "channel": "burst",
                                         "data": {"p": p, "i": i}}).encode())
                      for i in range(per_pub)) for p in range(publishers)]
    gate = threading.Barrier(publishers)

    def burst(p):
        gate.wait()
        pubs[p].s.sendall(blobs[p])

    def drain(c):
        try:
            for _ in range(per_pub):
                c.next()
        except OSError:
            pass

    # The publishers' replies are read too, so that they never fill up.
    drains = [threading.Thread(target=drain, args=(c,), daemon=True) for c in pubs]
    senders = [threading.Thread(target=burst, args=(p,)) for p in range(publishers)]
    for t in drains + senders:
        t.start()
    deadline = time.monotonic() + 60
    for t in senders + readers:
        t.join(max(0.1, deadline - time.monotonic()))
    check(got == [want, want] and closes == [None, None],
          f"{what}: both subscribers got every message ({got} of {want}; closes {closes})")
    for c in subs + pubs:
        c.s.close()


def main():
    with tempfile.TemporaryDirectory() as d:
        crt, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", crt],
                       check=True, capture_output=True)
        base = {"default_namespace": {"publish": "clients"},
                "limits": {"client_publish": {"per_second": 1000000, "burst": 1000000},
                           "client_commands": {"per_second": 1000000, "burst": 1000000}}}
        proc, port = start(BINARY, base)
        try:
            run(port, False, 8, 5000)
            run(port, False, 16, 3000)
        finally:
            stop(proc)
        proc, port = start(BINARY, dict(base, tls={"cert": crt, "key": key}))
        try:
            run(port, True, 1, 5000)
            run(port, True, 4, 3000)
        finally:
            stop(proc)
    return summary()


sys.exit(main())
