#!/usr/bin/env python3
"""Correctness under load (a ctest, not a benchmark): the real server driven by
bench/loadgen in every workload at a small scale. Checks what must hold whatever the
machine's speed: every message reaches every healthy subscriber exactly once and in
order (over TLS too; in rooms, every subscriber of its channel and no other), churn never fails, idle memory is measured, and subscribers that never read are
closed (4008) while the others lose nothing. No figure is compared with a threshold.

usage: smoke.py SWITCHBOARD LOADGEN
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
import sbproc  # noqa: E402
from sbproc import check, stop  # noqa: E402

SERVER, LOADGEN = sys.argv[1], sys.argv[2]
BASE = {
    "default_namespace": {"publish": "clients"},
    "limits": {
        "max_connections_per_ip": 5000,
        "max_message_size": 262144,
        "max_data_size": 200000,
        "connection_rate_per_ip": {"per_second": 1000000, "burst": 1000000},
        "client_publish": {"per_second": 1000000, "burst": 1000000},
        "client_commands": {"per_second": 1000000, "burst": 1000000},
    },
}


def start(limits=None, tls=None):
    """The server on BASE plus limits; tls: {"cert": ..., "key": ...} or None."""
    config = json.loads(json.dumps(BASE))
    config["limits"].update(limits or {})
    if tls:
        config["tls"] = tls
    return sbproc.start(SERVER, config)


def loadgen(port, pid, *args):
    argv = [LOADGEN, "--target", "switchboard", "--port", str(port), "--server-pid", str(pid),
            *map(str, args)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if out.returncode != 0 or not out.stdout.strip():
        check(False, f"loadgen {' '.join(map(str, args))} exits 0 (rc {out.returncode}: "
                     f"{out.stderr.strip()[-300:]})")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def clean(r, what, subs):
    check(r["connected"] >= subs, f"{what}: {subs} subscribers connected ({r['connected']})")
    check(r["published"] > 0 and r["delivered"] >= r["published"] * subs,
          f"{what}: every message reached every subscriber "
          f"({r['delivered']} deliveries of {r['published']} messages)")
    for key in ("lost", "duplicated", "reordered", "errors"):
        check(r[key] == 0, f"{what}: {key} = {r[key]}")
    check(r.get("drained") is True, f"{what}: drained before the end")


def rooms_clean(r, what, subs, channels):
    """Every message reached the subscribers of its channel (subs / channels of them) only."""
    check(r["connected"] >= subs, f"{what}: {subs} subscribers connected ({r['connected']})")
    check(r["published"] > 0 and r["published"] == r["published_expected"],
          f"{what}: every message due was sent ({r['published']} of {r['published_expected']})")
    check(r["delivered"] == r["published"] * subs // channels,
          f"{what}: each message reached the {subs // channels} subscribers of its channel "
          f"({r['delivered']} deliveries of {r['published']} messages)")
    check(r["acked"] == r["published"], f"{what}: every publish acknowledged ({r['acked']})")
    for key in ("lost", "duplicated", "reordered", "errors"):
        check(r[key] == 0, f"{what}: {key} = {r[key]}")
    check(r.get("drained") is True, f"{what}: drained before the end")


def main():
    # Idle memory on a server of its own, first: under AddressSanitizer the big frames freed by
    # the fanout phases leave the quarantine (and are unmapped) while later phases run, so RSS
    # measured after them can shrink as connections are added.
    proc, port = start()
    try:
        r = loadgen(port, proc.pid, "--workload", "idle", "--subs", 300)
        if r:
            check(r["connected"] == 300 and (r["rss_per_conn_bytes"] or 0) > 0,
                  f"idle: 300 connected, {r['rss_per_conn_bytes']} bytes per connection")
        r = loadgen(port, proc.pid, "--workload", "churn", "--conns", 1000, "--concurrency", 16)
        if r:
            check(r["churn_failures"] == 0 and r["connected"] == 1000,
                  f"churn: 1000 connections, {r['churn_failures']} failures")
    finally:
        stop(proc)

    proc, port = start()
    try:
        r = loadgen(port, proc.pid, "--workload", "fanout", "--subs", 200, "--duration", 2)
        if r:
            clean(r, "fanout 200 subscribers, window 32", 200)
        r = loadgen(port, proc.pid, "--workload", "fanout", "--subs", 20, "--duration", 1,
                    "--size", 70000, "--window", 4)
        if r:
            clean(r, "fanout of 70 kB messages (64-bit lengths, over one batch)", 20)
        r = loadgen(port, proc.pid, "--workload", "rate", "--subs", 100, "--rate", 100,
                    "--duration", 2)
        if r:
            clean(r, "rate 100 msg/s to 100 subscribers", 100)
        r = loadgen(port, proc.pid, "--workload", "rooms", "--subs", 200, "--channels", 20,
                    "--publishers", 4, "--rate", 200, "--duration", 2)
        if r:
            rooms_clean(r, "rooms: 200 subscribers in 20 channels, 200 msg/s", 200, 20)
    finally:
        stop(proc)

    # The same fan-out over TLS: batches leave through SSL_write, which may take part of one.
    d = tempfile.mkdtemp()
    try:
        return tls_and_slow(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def tls_and_slow(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    tls = {"cert": cert, "key": key}
    proc, port = start(tls=tls)
    try:
        r = loadgen(port, proc.pid, "--workload", "fanout", "--subs", 100, "--duration", 2, "--tls")
        if r:
            clean(r, "fanout over TLS to 100 subscribers", 100)
        r = loadgen(port, proc.pid, "--workload", "fanout", "--subs", 10, "--duration", 1,
                    "--size", 70000, "--window", 4, "--tls")
        if r:
            clean(r, "fanout of 70 kB messages over TLS", 10)
        r = loadgen(port, proc.pid, "--workload", "churn", "--conns", 200, "--concurrency", 8, "--tls")
        if r:
            check(r["churn_failures"] == 0 and r["connected"] == 200,
                  f"churn over TLS: 200 connections, {r['churn_failures']} failures")
    finally:
        stop(proc)

    # Slow consumers, over TCP and over TLS (where a write the socket cannot take whole
    # leaves a partial SSL_write for lws to finish): a small send queue, large messages so
    # the kernel buffers fill fast.
    for over, extra in (("", ()), (" over TLS", ("--tls",))):
        proc, port = start({"send_queue_bytes": 262144}, tls if extra else None)
        try:
            r = loadgen(port, proc.pid, "--workload", "fanout", "--subs", 20, "--slow", 2,
                        "--size", 8000, "--duration", 4, *extra)
            if r:
                clean(r, f"fanout{over} with 2 subscribers that never read", 20)
                check(r["slow_closed"] == 2, f"both readers that stopped{over} were closed "
                                             f"({r['slow_closed']}, codes {r['slow_close_codes']})")
        finally:
            stop(proc)
    return sbproc.summary()


sys.exit(main())
