#!/usr/bin/python3
"""https:// webhooks against a Python HTTPS receiver, with a CA and certificates made here:
the endpoint's ca_file is trusted and the events arrive signed; a certificate for another
host name, a self-signed one or one from a CA the server was not told about is refused
(the batch fails with the reason logged, nothing reaches the receiver) while the server
goes on serving; CA certificates lying in ../share of the working directory (lws's own
default) are not trusted; an answer slower than lws's 10 s default still counts within
timeout_ms; bad ca_file entries (missing, empty, damaged, a FIFO, a directory, on an
http:// URL) refuse startup naming the key. Bounded in time; loopback only.

usage: webhook_tls_e2e.py PATH/TO/switchboard
"""
import asyncio
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import websockets

import sbproc
from sbproc import check, stop

BINARY = sys.argv[1]
SECRET = "whsec_tls"


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(d):
    """A CA, a leaf for localhost/127.0.0.1 signed by it, a leaf for another name signed by
    it, and a self-signed localhost certificate. Returns the paths."""
    p = {k: os.path.join(d, k) for k in ("ca.pem", "ca.key", "good.pem", "good.key",
                                         "other.pem", "other.key", "self.pem", "self.key")}
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["ca.key"], "-out", p["ca.pem"],
            "-days", "2", "-subj", "/CN=Switchboard test CA")
    for name, san in (("good", "DNS:localhost,IP:127.0.0.1"), ("other", "DNS:other.example")):
        csr = os.path.join(d, name + ".csr")
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p[name + ".key"], "-out", csr,
                "-subj", "/CN=" + san.split(",")[0][4:])
        openssl("x509", "-req", "-in", csr, "-CA", p["ca.pem"], "-CAkey", p["ca.key"],
                "-CAcreateserial", "-out", p[name + ".pem"], "-days", "2", "-extfile", ext)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["self.key"], "-out", p["self.pem"],
            "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    return p


class Receiver:
    """An HTTPS server on a free loopback port recording every POST it is sent."""

    def __init__(self, cert, key, delay=0):
        self.requests = []
        rec = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(delay)
                rec.append((self.path, self.headers, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # refused handshakes are expected in the negative cases

        self.httpd = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                            do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def endpoint(url, **extra):
    return {"url": url, "events": ["client_connected"], "secret": SECRET, "max_retries": 0,
            "timeout_ms": 3000, **extra}


def start(webhooks, cwd=None):
    # No SSL_CERT_FILE/SSL_CERT_DIR from the caller: the default store must be the system's.
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    return sbproc.start(BINARY, {"webhooks": webhooks}, env=env, cwd=cwd)


def logged(proc, text):
    return any(text in line for line in proc.log_lines)


def webhook_counts(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r'switchboard_webhook_events_total\{outcome="(\w+)"\} (\d+)', text)}


async def connect_client(port, user):
    """One client_connected event; also proves the server still serves WebSocket clients."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.send(json.dumps({"type": "connect", "id": 1, "user": user}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        return reply.get("type") == "connected"


def wait_for(cond, seconds=10):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def signature_ok(headers, body):
    parts = dict(p.split("=", 1) for p in headers.get("Switchboard-Signature", "").split(","))
    want = hmac.new(SECRET.encode(), parts.get("t", "").encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts.get("v1", ""))


def delivered_case(p):
    good = Receiver(p["good.pem"], p["good.key"])
    proc, port = start([endpoint(f"https://localhost:{good.port}/hooks/a?x=1", ca_file=p["ca.pem"]),
                        endpoint(f"https://127.0.0.1:{good.port}/hooks/b", ca_file=p["ca.pem"])])
    try:
        check(asyncio.run(connect_client(port, "alice")), "client connects while webhooks are on")
        check(wait_for(lambda: len(good.requests) >= 2), f"both https endpoints got a request "
                                                         f"({len(good.requests)})")
        paths = sorted(r[0] for r in good.requests)
        check(paths == ["/hooks/a?x=1", "/hooks/b"], f"by host name and by IP address ({paths})")
        for path, headers, body in good.requests:
            events = json.loads(body)["events"]
            check(signature_ok(headers, body), f"{path}: signature verifies")
            check([(e["name"], e["user"]) for e in events] == [("client_connected", "alice")],
                  f"{path}: the event arrived ({events})")
        counts = webhook_counts(port)
        check(counts.get("delivered") == 2 and counts.get("failed") == 0,
              f"metrics: 2 delivered, 0 failed ({counts})")
    finally:
        stop(proc)
        good.close()


def refused_case(p):
    """Each endpoint presents a certificate the server must not accept."""
    other = Receiver(p["other.pem"], p["other.key"])      # right CA, wrong host name
    selfsigned = Receiver(p["self.pem"], p["self.key"])   # self-signed, not the CA
    good = Receiver(p["good.pem"], p["good.key"])         # trusted only through ca_file
    proc, port = start([endpoint(f"https://localhost:{other.port}/", ca_file=p["ca.pem"]),
                        endpoint(f"https://127.0.0.1:{other.port}/", ca_file=p["ca.pem"]),
                        endpoint(f"https://localhost:{selfsigned.port}/", ca_file=p["ca.pem"]),
                        endpoint(f"https://localhost:{good.port}/")])
    try:
        check(asyncio.run(connect_client(port, "bob")), "client connects")
        check(wait_for(lambda: webhook_counts(port).get("failed") == 4),
              f"4 batches failed ({webhook_counts(port)})")
        check(other.requests == [], "a certificate for another host name (or without the IP) is refused")
        check(selfsigned.requests == [], "a self-signed certificate is refused")
        check(good.requests == [], "a CA that is neither ca_file nor in the system store is refused")
        for why in ("certificate refused: hostname mismatch", "certificate refused: IP address mismatch",
                    "certificate refused: self-signed certificate",
                    "certificate refused: unable to get local issuer certificate"):
            check(wait_for(lambda: logged(proc, why), 5), f"the log says {why!r}")
        check(asyncio.run(connect_client(port, "carol")), "the server still serves clients after refused handshakes")
    finally:
        stop(proc)
        for r in (other, selfsigned, good):
            r.close()


def share_case(p, d):
    """lws's default client context also trusts hashed certificates in ../share of the
    working directory; the server's own contexts must not."""
    root = os.path.join(d, "root")
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "share"))
    h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", p["ca.pem"]], check=True,
                       capture_output=True, text=True).stdout.strip()
    with open(p["ca.pem"]) as src, open(os.path.join(root, "share", h + ".0"), "w") as dst:
        dst.write(src.read())
    good = Receiver(p["good.pem"], p["good.key"])
    proc, port = start([endpoint(f"https://localhost:{good.port}/")], cwd=os.path.join(root, "bin"))
    try:
        check(asyncio.run(connect_client(port, "dave")), "client connects")
        check(wait_for(lambda: webhook_counts(port).get("failed") == 1),
              f"a CA found only in ../share is not trusted ({webhook_counts(port)})")
        check(good.requests == [], "nothing reached the receiver")
    finally:
        stop(proc)
        good.close()


def slow_answer_case(p):
    """An answer after 11 s with timeout_ms 15000: delivered once, not cut off at 10 s."""
    slow = Receiver(p["good.pem"], p["good.key"], delay=11)
    proc, port = start([endpoint(f"https://localhost:{slow.port}/", ca_file=p["ca.pem"], timeout_ms=15000)])
    try:
        check(asyncio.run(connect_client(port, "erin")), "client connects")
        check(wait_for(lambda: webhook_counts(port).get("delivered") == 1, 20),
              f"an answer after 11 s is within timeout_ms 15000 ({webhook_counts(port)})")
        check(len(slow.requests) == 1 and webhook_counts(port).get("failed") == 0,
              f"one request, nothing failed ({len(slow.requests)} requests)")
    finally:
        stop(proc)
        slow.close()


def config_errors(p, d):
    notpem = os.path.join(d, "notpem.txt")
    with open(notpem, "w") as f:
        f.write("this is not a certificate\n")
    damaged = os.path.join(d, "damaged.pem")
    with open(p["ca.pem"]) as f:
        good = f.read()
    with open(damaged, "w") as f:
        f.write(good + "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    fifo = os.path.join(d, "fifo.pem")
    os.mkfifo(fifo)
    cases = [
        (endpoint("https://localhost:1/", ca_file=os.path.join(d, "missing.pem")),
         "webhooks[0].ca_file: cannot read"),
        (endpoint("https://localhost:1/", ca_file=""), "webhooks[0].ca_file: must be"),
        (endpoint("https://localhost:1/", ca_file=7), "webhooks[0].ca_file: must be"),
        (endpoint("http://localhost:1/", ca_file=p["ca.pem"]), "webhooks[0].ca_file: only for an https:// url"),
        (endpoint("https://localhost:1/", ca_file=notpem), "webhooks[0].ca_file: \"" + notpem + "\" is not a PEM file"),
        (endpoint("https://localhost:1/", ca_file=damaged), "is not a PEM file of certificates (or a part of it is damaged)"),
        (endpoint("https://localhost:1/", ca_file=fifo), "webhooks[0].ca_file: \"" + fifo + "\" is not a regular file"),
        (endpoint("https://localhost:1/", ca_file=d), "is not a regular file"),
    ]
    for entry, want in cases:
        cfg = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"webhooks": [entry]}, cfg)
        cfg.close()
        out = subprocess.run([BINARY, "--config", cfg.name, "--host", "127.0.0.1", "--port", "0"],
                             capture_output=True, text=True, timeout=20)
        os.unlink(cfg.name)
        check(out.returncode == 2 and want in out.stderr,
              f"ca_file {entry['ca_file']!r} on {entry['url']}: exit 2 with {want!r} "
              f"(got {out.returncode}: {out.stderr.strip()[-160:]!r})")


def main():
    d = tempfile.mkdtemp()
    p = make_pki(d)
    try:
        delivered_case(p)
        refused_case(p)
        share_case(p, d)
        slow_answer_case(p)
        config_errors(p, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return sbproc.summary()


sys.exit(main())
