#!/usr/bin/env python3
"""Benchmark Switchboard against nginx+nchan, a Node `ws` broadcast server and a Socket.IO server.

Runs the same load generator (build/bench/loadgen) against each server, on the same
machine, with the server pinned to CPU 0 and the load generator to CPU 1, a fresh server
process for every run, and the servers taken in turn within each repetition. Writes every
raw result to bench/results/<timestamp>.json and a markdown summary to
bench/results/latest.md and stdout. See bench/README.md.

Python standard library only. It builds nothing: `make bench` builds first.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
PEERS = os.path.join(BENCH, "peers")
NODE_DIR = os.path.join(PEERS, "node")
NCHAN_TEMPLATE = os.path.join(PEERS, "nchan.conf.in")
SB_CONFIG = os.path.join(BENCH, "switchboard.json")
RESULTS = os.path.join(BENCH, "results")
NCHAN_MODULE_CANDIDATES = [
    "/usr/lib/nginx/modules/ngx_nchan_module.so",
    "/usr/share/nginx/modules/ngx_nchan_module.so",
]

SERVERS = ["switchboard", "nchan", "ws", "socketio"]
SERVER_TITLES = {"switchboard": "Switchboard", "nchan": "nginx+nchan", "ws": "Node ws",
                 "socketio": "Socket.IO"}
LOADGEN_TARGET = {"switchboard": "switchboard", "nchan": "nchan", "ws": "ws", "socketio": "socketio"}
NODE_SCRIPT = {"ws": "server.js", "socketio": "socketio.js"}
NODE_MODULE = {"ws": "ws", "socketio": "socket.io"}

PAYLOAD = 100  # bytes of each published message's data, unless a workload says "size"
CHANNEL = "bench"
SERVER_CPU = "0"
LOADGEN_CPU = "1"
READY_TIMEOUT = 20.0  # seconds for a server to accept TCP
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
PAUSE = 1.0  # seconds between runs (sockets closing, memory returned)


def workloads(quick):
    """The workloads, in run order. Each: id, title, loadgen args, expected duration."""
    d = 3 if quick else 10
    idle_subs = 2000 if quick else 10000
    churn = 5000 if quick else 20000
    return [
        {"id": "W1", "title": f"idle: {idle_subs:,} subscribers, memory per connection",
         "args": {"workload": "idle", "subs": idle_subs, "duration": d}},
        {"id": "W2", "title": "fan-out: 1,000 subscribers, max rate, window 32",
         "args": {"workload": "fanout", "subs": 1000, "window": 32, "duration": d}},
        {"id": "W2k1", "title": "W2 with 1 KB messages: 1,000 subscribers, max rate, window 32",
         "args": {"workload": "fanout", "subs": 1000, "window": 32, "size": 1024, "duration": d}},
        {"id": "W2k16", "title": "W2 with 16 KB messages: 1,000 subscribers, max rate, window 32",
         "args": {"workload": "fanout", "subs": 1000, "window": 32, "size": 16384, "duration": d}},
        {"id": "W3", "title": "fan-out: 10,000 subscribers, max rate, window 32",
         "args": {"workload": "fanout", "subs": 10000, "window": 32, "duration": d}},
        {"id": "W4", "title": "rate: 200 msg/s to 1,000 subscribers",
         "args": {"workload": "rate", "subs": 1000, "rate": 200, "duration": d}},
        {"id": "W4b", "title": "rate: 50 msg/s to 1,000 subscribers",
         "args": {"workload": "rate", "subs": 1000, "rate": 50, "duration": d}},
        {"id": "W5", "title": f"churn: {churn:,} connections (connect, subscribe, close)",
         "args": {"workload": "churn", "conns": churn, "duration": d}},
        {"id": "W6", "title": "fan-out with slow readers: 1,000 subscribers plus 10 that never read",
         "args": {"workload": "fanout", "subs": 1000, "slow": 10, "window": 32, "duration": d}},
        # Rooms: 10,000 subscribers, 10 in each of 1,000 channels, messages to random channels.
        {"id": "R1", "title": "rooms: 10,000 subscribers in 1,000 channels, 2,000 msg/s (20,000 deliveries/s)",
         "args": {"workload": "rooms", "subs": 10000, "channels": 1000, "publishers": 8, "rate": 2000,
                  "duration": d}},
        {"id": "R2", "title": "rooms: 10,000 subscribers in 1,000 channels, 10,000 msg/s (100,000 deliveries/s)",
         "args": {"workload": "rooms", "subs": 10000, "channels": 1000, "publishers": 8, "rate": 10000,
                  "duration": d}},
        {"id": "R3", "title": "rooms: 10,000 subscribers in 1,000 channels, 20,000 msg/s (200,000 deliveries/s)",
         "args": {"workload": "rooms", "subs": 10000, "channels": 1000, "publishers": 8, "rate": 20000,
                  "duration": d}},
        # The same jobs over TLS (wss://, ECDSA P-256 certificate, TLS 1.3 as negotiated).
        {"id": "T2", "title": "W2 over TLS: 1,000 subscribers, max rate, window 32",
         "tls": True, "args": {"workload": "fanout", "subs": 1000, "window": 32, "duration": d}},
        {"id": "T5", "title": f"W5 over TLS: {churn // 4:,} connections (TLS handshake, connect, subscribe, close)",
         "tls": True, "args": {"workload": "churn", "conns": churn // 4, "duration": d}},
    ]


# What the summary shows for each workload: (label, loadgen key, better) where better is
# "higher", "lower" or None (shown without a ratio).
METRICS = {
    "W1": [("server RSS per connection, bytes", "rss_per_conn_bytes", "lower"),
           ("connected", "connected", None)],
    "W2": [("deliveries/s", "deliveries_per_s", "higher"),
           ("latency p50, ms", "lat_p50_ms", "lower"),
           ("latency p99, ms", "lat_p99_ms", "lower"),
           ("server CPU %", "server_cpu_pct", None),
           ("loadgen CPU %", "loadgen_cpu_pct", None)],
    "W4": [("delivered/s", "deliveries_per_s", "higher"),
           ("latency p50, ms", "lat_p50_ms", "lower"),
           ("latency p99, ms", "lat_p99_ms", "lower"),
           ("lost", "lost", "lower"),
           ("server CPU %", "server_cpu_pct", "lower")],
    "W5": [("connections/s", "conn_per_s", "higher"),
           ("failed connections", "churn_failures", "lower")],
    "W6": [("healthy deliveries/s", "deliveries_per_s", "higher"),
           ("healthy latency p99, ms", "lat_p99_ms", "lower"),
           ("slow clients closed (codes)", "slow_closed", None),
           ("server RSS max, MiB", "server_rss_kb_max", "lower"),
           ("server CPU %", "server_cpu_pct", None),
           ("loadgen CPU %", "loadgen_cpu_pct", None)],
}
METRICS["R1"] = [("delivered/s", "deliveries_per_s", "higher"),
                 ("expected deliveries/s", "deliveries_expected_per_s", None),
                 ("latency p50, ms", "lat_p50_ms", "lower"),
                 ("latency p99, ms", "lat_p99_ms", "lower"),
                 ("publish lag max, ms", "publish_lag_max_ms", "lower"),
                 ("publishes acknowledged/s", "accepted_per_s", "higher"),
                 ("lost", "lost", "lower"),
                 ("server CPU %", "server_cpu_pct", "lower"),
                 ("loadgen CPU %", "loadgen_cpu_pct", None)]
METRICS["R2"] = METRICS["R3"] = METRICS["R1"]
METRICS["W2k1"] = METRICS["W2k16"] = METRICS["W2"]
METRICS["W3"] = METRICS["W2"]
METRICS["W4b"] = METRICS["W4"]
METRICS["T2"] = METRICS["W2"]
# TLS churn is bound by handshake crypto on both sides (the load generator's too), so the
# servers may run at different rates: CPU per connection shows who pays how much.
METRICS["T5"] = METRICS["W5"] + [("server CPU per connection, ms", "server_cpu_ms_per_conn", "lower"),
                                 ("server CPU %", "server_cpu_pct", None),
                                 ("loadgen CPU %", "loadgen_cpu_pct", None)]

# Counters that must be 0 (or match) in a correct run; any other value is listed below the table.
CHECKS = ["lost", "duplicated", "reordered", "errors", "stalled"]


# --------------------------------------------------------------------------- processes

def raise_nofile():
    """preexec_fn: soft open-file limit up to the hard limit (servers and loadgen)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop(proc, grace=STOP_GRACE):
    """SIGTERM, then SIGKILL after grace seconds, of a process this script started.
    Returns its exit status (negative: killed by that signal)."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except ProcessLookupError:
            pass
    return proc.returncode


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return ""


class Tools:
    def __init__(self, args):
        self.pin = args.pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
        self.switchboard = os.path.join(args.build, "switchboard")
        self.loadgen = args.loadgen or os.path.join(args.build, "bench", "loadgen")
        self.nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        self.nchan_module = next((p for p in NCHAN_MODULE_CANDIDATES if os.path.exists(p)), None)
        self.node = shutil.which("node")

    def pinned(self, cpu, argv):
        return (["taskset", "-c", cpu] + argv) if self.pin else argv

    def missing(self, server):
        """Why this server cannot be run, or None."""
        if server == "switchboard":
            return None if os.access(self.switchboard, os.X_OK) else f"{self.switchboard} not built"
        if server == "nchan":
            if not self.nginx:
                return "nginx not installed (scripts/install-bench-deps.sh)"
            if not self.nchan_module:
                return "the nchan module is not installed (libnginx-mod-nchan)"
            return None
        if server in NODE_SCRIPT:
            if not self.node:
                return "node not installed"
            if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", NODE_MODULE[server])):
                return f"bench/peers/node/node_modules/{NODE_MODULE[server]} missing (npm ci)"
            return None
        return "unknown server"


def worker_pid(pid):
    """The single worker process of an nginx master (None until it exists)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:
        return None
    return int(kids[0]) if len(kids) == 1 else None


def make_cert(rundir):
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 (the TLS workloads). Returns
    (cert path, key path)."""
    cert, key = os.path.join(rundir, "bench-cert.pem"), os.path.join(rundir, "bench-key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def start_server(tools, server, rundir, tls=False):
    """Starts one server on a free loopback port (serving TLS if tls). Returns (proc, port,
    log path, pid of the process that serves: the server itself, or nginx's worker)."""
    last_err = None
    cert, key = make_cert(rundir) if tls else (None, None)
    env = {k: v for k, v in os.environ.items() if k not in ("TLS_CERT", "TLS_KEY")}
    for attempt in range(3):
        port = free_port()
        log = os.path.join(rundir, f"{server}-{port}.log")
        if server == "switchboard":
            config = SB_CONFIG
            if tls:
                with open(SB_CONFIG) as f:
                    sb = json.load(f)
                sb["tls"] = {"cert": cert, "key": key}
                config = os.path.join(rundir, "switchboard-tls.json")
                with open(config, "w") as f:
                    json.dump(sb, f)
            argv = [tools.switchboard, "-c", config, "-H", "127.0.0.1", "-p", str(port), "-l", "warn"]
        elif server == "nchan":
            ndir = os.path.join(rundir, f"nginx-{port}")
            os.makedirs(ndir, exist_ok=True)
            with open(NCHAN_TEMPLATE) as f:
                conf = f.read()
            conf = (conf.replace("@PORT@", str(port)).replace("@RUNDIR@", ndir)
                    .replace("@NCHAN_MODULE@", tools.nchan_module)
                    .replace("@SSL@", "ssl" if tls else "")
                    .replace("@SSL_FILES@", f'ssl_certificate "{cert}"; ssl_certificate_key "{key}"; '
                             "ssl_protocols TLSv1.2 TLSv1.3;" if tls else ""))
            with open(os.path.join(ndir, "nginx.conf"), "w") as f:
                f.write(conf)
            log = os.path.join(ndir, "error.log")
            argv = [tools.nginx, "-e", log, "-p", ndir + "/", "-c", os.path.join(ndir, "nginx.conf")]
        else:
            argv = [tools.node, os.path.join(NODE_DIR, NODE_SCRIPT[server]), str(port)]
            if tls:
                env.update(TLS_CERT=cert, TLS_KEY=key)
        with open(log, "ab") as out:
            proc = subprocess.Popen(tools.pinned(SERVER_CPU, argv), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=out, cwd=ROOT, preexec_fn=raise_nofile,
                                    start_new_session=True, env=env)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if port_open(port):
                serving = worker_pid(proc.pid) if server == "nchan" else proc.pid
                if serving:
                    return proc, port, log, serving
            time.sleep(0.05)
        stop(proc)
        last_err = f"{server} did not start on port {port} (exit {proc.returncode}):\n{tail(log)}"
    raise RuntimeError(last_err)


def timewait_sockets():
    """TCP sockets in TIME_WAIT on this machine (from /proc/net/sockstat), or 0."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    fields = line.split()
                    return int(fields[fields.index("tw") + 1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def settle_timewait(limit=2000, max_wait=65):
    """Churn leaves tens of thousands of TIME_WAIT sockets for 60 s, which slow the
    kernel's connection lookups for whoever runs next: wait (bounded) until they are
    gone, so that every server's churn run starts from the same state."""
    deadline = time.monotonic() + max_wait
    while timewait_sockets() > limit and time.monotonic() < deadline:
        time.sleep(1)


def run_loadgen(tools, server, port, pid, wl, connect_timeout):
    a = wl["args"]
    if a["workload"] == "churn":
        settle_timewait()
    argv = [tools.loadgen, "--target", LOADGEN_TARGET[server], "--host", "127.0.0.1",
            "--port", str(port), "--workload", a["workload"], "--duration", str(a["duration"]),
            "--size", str(a.get("size", PAYLOAD)), "--channel", CHANNEL, "--server-pid", str(pid),
            "--connect-timeout", str(connect_timeout)]
    if wl.get("tls"):
        argv.append("--tls")
    for key in ("subs", "slow", "window", "rate", "conns", "concurrency", "channels", "publishers"):
        if key in a:
            argv += [f"--{key}", str(a[key])]
    timeout = a["duration"] + (300 if a["workload"] == "churn" else 120)
    cmd = tools.pinned(LOADGEN_CPU, argv)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, preexec_fn=raise_nofile,
                            start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    run = {"cmd": cmd, "rc": proc.returncode, "elapsed_s": round(time.monotonic() - t0, 2),
           "timed_out": timed_out, "result": None,
           "stderr_tail": "\n".join(err.decode("utf-8", "replace").splitlines()[-20:])}
    for line in reversed(out.decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                run["result"] = json.loads(line)
            except ValueError:
                run["bad_output"] = line[:500]
            break
    res = run["result"] or {}
    if res.get("conn_per_s") and res.get("server_cpu_pct") is not None:
        res["server_cpu_ms_per_conn"] = res["server_cpu_pct"] * 10.0 / res["conn_per_s"]
    return run


# --------------------------------------------------------------------------- machine info

def cmd_output(argv):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        return (p.stdout + p.stderr).decode("utf-8", "replace").strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def dpkg_version(pkg):
    v = cmd_output(["dpkg-query", "-W", "-f=${Version}", pkg])
    return v if v and "no packages found" not in v else None


def machine_info(tools):
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for module in NODE_MODULE.values():
        try:
            with open(os.path.join(NODE_DIR, "node_modules", module, "package.json")) as f:
                versions[module] = json.load(f).get("version")
        except (OSError, ValueError):
            versions[module] = None
    mem = None
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split(":", 1)[1].split()[0])
            mem = f"{kb / 1048576:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "pinning": f"server on CPU {SERVER_CPU}, loadgen on CPU {LOADGEN_CPU}" if tools.pin else "none",
        "switchboard": cmd_output([tools.switchboard, "--version"]),
        "switchboard_commit": cmd_output(["git", "-C", ROOT, "describe", "--always", "--dirty"]),
        "switchboard_built": (datetime.datetime.fromtimestamp(
            os.path.getmtime(tools.switchboard), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            if os.path.exists(tools.switchboard) else None),
        "loadgen_built": (datetime.datetime.fromtimestamp(
            os.path.getmtime(tools.loadgen), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            if os.path.exists(tools.loadgen) else None),
        "libwebsockets": dpkg_version("libwebsockets17") or dpkg_version("libwebsockets-dev"),
        "nginx": cmd_output([tools.nginx, "-v"]) if tools.nginx else None,
        "nchan": dpkg_version("libnginx-mod-nchan"),
        "node": cmd_output([tools.node, "--version"]) if tools.node else None,
        "ws": versions["ws"],
        "socketio": versions["socket.io"],
    }


# --------------------------------------------------------------------------- summary

INTEGER_KEYS = {"connected", "lost", "duplicated", "reordered", "errors", "stalled",
                "churn_failures", "slow_closed", "rss_per_conn_bytes", "published", "delivered"}


def fmt_num(v, key=None):
    if v is None:
        return "–"
    if key == "server_rss_kb_max":
        v = v / 1024.0
    av = abs(v)
    if key in ("deliveries_per_s", "conn_per_s", "accepted_per_s", "deliveries_expected_per_s"):
        if av >= 1e6:
            return f"{v / 1e6:.2f}M"
        if av >= 1e4:
            return f"{v / 1e3:.0f}k"
        if av >= 1e3:
            return f"{v / 1e3:.1f}k"
        return f"{v:.0f}"
    if key in INTEGER_KEYS or isinstance(v, int) or (float(v).is_integer() and av >= 100):
        return f"{int(round(v)):,}"
    if av >= 100:
        return f"{v:,.0f}"
    if av >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def codes_text(codes_list):
    """slow_close_codes of every run, merged: '4008×10'."""
    total = {}
    for codes in codes_list:
        if isinstance(codes, dict):
            items = codes.items()
        elif isinstance(codes, list):
            items = []
            for c in codes:
                if isinstance(c, (list, tuple)) and len(c) == 2:
                    items.append((c[0], c[1]))
                else:
                    items.append((c, 1))
        else:
            continue
        for code, n in items:
            total[str(code)] = total.get(str(code), 0) + (n if isinstance(n, (int, float)) else 1)
    if not total:
        return ""
    text = ", ".join(f"{'no close frame' if c == '0' else c}: {n:g}" for c, n in sorted(total.items()))
    return text + ("; all runs" if len(codes_list) > 1 else "")


def values(runs, key):
    out = []
    for r in runs:
        res = r.get("result")
        if res is not None and isinstance(res.get(key), (int, float)) and not isinstance(res.get(key), bool):
            out.append(res[key])
    return out


def cell(vals, key, reps):
    if not vals:
        return "–", None
    med = statistics.median(vals)
    text = fmt_num(med, key)
    if reps > 1 and len(vals) > 1:
        text += f" [{fmt_num(min(vals), key)}–{fmt_num(max(vals), key)}]"
    return text, med


def summarize(data):
    info = data["machine"]
    servers = data["servers"]
    reps = data["reps"]
    wls = {w["id"]: w for w in data["workloads"]}
    by = {}
    for r in data["runs"]:
        by.setdefault((r["workload"], r["server"]), []).append(r)
    peers = [s for s in servers if s != "switchboard"]
    has_sb = "switchboard" in servers

    lines = []
    lines.append(f"# Switchboard benchmark, {data['started']}")
    lines.append("")
    lines.append(f"- machine: {info.get('nproc')} CPUs, {info.get('cpu')}, {info.get('memory')}, "
                 f"Linux {info.get('kernel')}, open files {info.get('nofile_limit')}; "
                 f"pinning: {info.get('pinning')}; loopback only")
    built = ""
    if info.get("switchboard_commit"):
        built = f"commit {info['switchboard_commit']}, built {info.get('switchboard_built')}; "
    lines.append(f"- servers: {info.get('switchboard')} ({built}libwebsockets {info.get('libwebsockets')}); "
                 f"{info.get('nginx')} with nchan {info.get('nchan')}; "
                 f"Node {info.get('node')} with ws {info.get('ws')} and socket.io {info.get('socketio')}")
    lines.append(f"- {reps} repetition(s), {data['duration_s']} s per timed run, payload {PAYLOAD} bytes "
                 f"(W2k1 1 KB, W2k16 16 KB), "
                 f"a fresh server process per run, servers taken in turn within each repetition; "
                 f"cells are the median over repetitions with [min–max]")
    lines.append(f"- raw results: {data['raw_file']}")
    lines.append("")
    head = ["workload", "metric"] + [SERVER_TITLES[s] for s in servers]
    if has_sb:
        head += [f"Switchboard / {SERVER_TITLES[p]}" for p in peers]
        head.append("better")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * len(head)) + "|")
    for wid in data["order"]:
        first = True
        for label, key, better in METRICS[wid]:
            row = [f"**{wid}**" if first else "", label]
            first = False
            meds = {}
            for s in servers:
                runs = by.get((wid, s), [])
                vals = values(runs, key)
                text, med = cell(vals, key, reps)
                if key == "slow_closed" and vals:
                    codes = codes_text([r["result"].get("slow_close_codes") for r in runs
                                        if r.get("result")])
                    if codes:
                        text += f" ({codes})"
                if not runs:
                    text = "not run"
                elif not vals and any(r.get("error") or r.get("result") is None for r in runs):
                    text = "failed"
                meds[s] = med
                row.append(text)
            if has_sb:
                for p in peers:
                    a, b = meds.get("switchboard"), meds.get(p)
                    if better and a and b:
                        r = a / b
                        row.append(f"{r:.2f}" if r >= 0.1 else f"{r:.3f}")
                    else:
                        row.append("–")
                row.append({"higher": "higher", "lower": "lower", None: ""}[better])
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Ratios are Switchboard's median divided by the peer's: for deliveries/s and "
                 "connections/s above 1 means Switchboard is faster; for latency, RSS, CPU and losses "
                 "below 1 means Switchboard is better (the `better` column says which way each metric goes).")
    lines.append("")
    lines.append("Workloads:")
    for wid in data["order"]:
        lines.append(f"- {wid}: {wls[wid]['title']}")
    negotiated = {}
    for r in data["runs"]:
        res = r.get("result") or {}
        if res.get("tls_version"):
            negotiated.setdefault(r["server"], set()).add(f"{res['tls_version']} {res.get('tls_cipher')}")
    if negotiated:
        lines.append("")
        lines.append("TLS negotiated by the load generator: " + "; ".join(
            f"{SERVER_TITLES.get(s, s)} {', '.join(sorted(v))}" for s, v in negotiated.items()) + ".")

    # Anything that was not a clean run.
    issues = []
    for r in data["runs"]:
        tag = f"{r['workload']} {SERVER_TITLES.get(r['server'], r['server'])} rep {r['rep'] + 1}"
        if r.get("error"):
            issues.append(f"{tag}: {r['error'].splitlines()[0]}")
            continue
        lg = r.get("loadgen") or {}
        if lg.get("timed_out"):
            issues.append(f"{tag}: loadgen timed out after {lg.get('elapsed_s')} s")
        if lg.get("rc") not in (0, None):
            issues.append(f"{tag}: loadgen exit {lg.get('rc')}: {(lg.get('stderr_tail') or '').splitlines()[-1:]}")
        if r.get("server_died"):
            issues.append(f"{tag}: the server exited during the run (status {r.get('server_exit')})")
        elif r.get("server_exit") not in (0, None) and not (
                r["server"] in NODE_SCRIPT and r.get("server_exit") == -signal.SIGTERM):
            issues.append(f"{tag}: the server exited with status {r.get('server_exit')} on SIGTERM")
        res = r.get("result")
        if res is None:
            if not lg.get("timed_out") and lg.get("rc") == 0:
                issues.append(f"{tag}: no JSON result from loadgen")
            continue
        bad = [f"{k}={res[k]}" for k in CHECKS if isinstance(res.get(k), (int, float)) and res[k]]
        wl = wls[r["workload"]]["args"]
        want = wl.get("subs")
        if want and isinstance(res.get("connected"), int) and res["connected"] < want:
            bad.append(f"connected={res['connected']} of {want}")
        due, sent = res.get("published_expected"), res.get("published")
        if isinstance(due, int) and isinstance(sent, int) and sent < due:
            bad.append(f"published={sent} of {due} due (the server held the publishers up)")
        if bad:
            note = ""
            if "drain incomplete" in (lg.get("stderr_tail") or ""):
                note = (" (the load generator's drain ended first: messages still on their way "
                        "then count as lost)")
            issues.append(f"{tag}: " + ", ".join(bad) + note)
    lines.append("")
    if issues:
        lines.append("Runs that were not clean (losses, duplicates, reordering, errors, stalls, "
                     "failures):")
        lines += [f"- {i}" for i in issues]
    else:
        lines.append("Every run was clean: no loss, duplicate, reordering, error or stall reported.")
    skipped = data.get("skipped") or {}
    for s, why in skipped.items():
        lines.append(f"- {SERVER_TITLES.get(s, s)} not run: {why}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="Switchboard vs nginx+nchan, Node ws and Socket.IO (bench/README.md)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3; 1 with --quick)")
    ap.add_argument("--only", default="", help="comma-separated workloads, e.g. W2,W3")
    ap.add_argument("--servers", default=",".join(SERVERS), help="comma-separated: " + ",".join(SERVERS))
    ap.add_argument("--quick", action="store_true",
                    help="1 repetition, 3 s runs, W1 with 2,000 subscribers, W5 with 5,000 connections")
    ap.add_argument("--duration", type=int, default=0, help="seconds per timed run (default 10, 3 with --quick)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="CMake build directory")
    ap.add_argument("--loadgen", default=None, help="load generator (default BUILD/bench/loadgen)")
    ap.add_argument("--connect-timeout", type=int, default=60,
                    help="seconds loadgen may take to connect its subscribers")
    ap.add_argument("--no-install", action="store_true", help="do not run scripts/install-bench-deps.sh")
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin with taskset")
    ap.add_argument("--out", default=RESULTS, help="results directory (default bench/results)")
    ap.add_argument("--summarize", metavar="RAW_JSON", help="only print the summary of an earlier raw file")
    args = ap.parse_args()

    if args.summarize:
        with open(args.summarize) as f:
            sys.stdout.write(summarize(json.load(f)))
        return 0

    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    wls = workloads(args.quick)
    if args.duration > 0:
        for w in wls:
            w["args"]["duration"] = args.duration
    if args.only:
        ids = {w["id"].upper(): w["id"] for w in wls}
        want = [ids.get(x.strip().upper(), x.strip()) for x in args.only.split(",") if x.strip()]
        unknown = [x for x in want if x not in ids.values()]
        if unknown:
            ap.error(f"unknown workload(s): {', '.join(unknown)}")
        wls = [w for w in wls if w["id"] in want]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s}")

    if not args.no_install:
        rc = subprocess.call(["bash", os.path.join(ROOT, "scripts", "install-bench-deps.sh")])
        if rc != 0:
            print("bench: scripts/install-bench-deps.sh failed; peers that are missing are skipped",
                  file=sys.stderr)

    tools = Tools(args)
    if not os.access(tools.loadgen, os.X_OK):
        print(f"bench: {tools.loadgen} not found; build it: cmake --build build --target loadgen",
              file=sys.stderr)
        return 1
    if not tools.pin:
        print("bench: warning: not pinning (fewer than 2 CPUs, taskset missing or --no-pin)",
              file=sys.stderr)
    skipped = {}
    for s in list(servers):
        why = tools.missing(s)
        if why:
            skipped[s] = why
            print(f"bench: skipping {s}: {why}", file=sys.stderr)
    run_servers = [s for s in servers if s not in skipped]
    if not run_servers:
        print("bench: no server to run", file=sys.stderr)
        return 1

    started = datetime.datetime.now(datetime.timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(args.out, exist_ok=True)
    raw_file = os.path.join(args.out, f"{stamp}.json")
    data = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "raw_file": os.path.relpath(raw_file, ROOT),
        "machine": machine_info(tools),
        "reps": args.reps,
        "quick": args.quick,
        "duration_s": wls[0]["args"]["duration"] if wls else None,
        "servers": run_servers,
        "skipped": skipped,
        "order": [w["id"] for w in wls],
        "workloads": wls,
        "runs": [],
    }

    def save():
        tmp = raw_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, raw_file)

    rundir = tempfile.mkdtemp(prefix="switchboard-bench-")
    total = args.reps * len(wls) * len(run_servers)
    n = 0
    try:
        for rep in range(args.reps):
            # Rotate which server goes first so none is always first or last.
            order = run_servers[rep % len(run_servers):] + run_servers[:rep % len(run_servers)]
            for wl in wls:
                for server in order:
                    n += 1
                    entry = {"rep": rep, "workload": wl["id"], "server": server}
                    proc = log = None
                    try:
                        proc, port, log, serving = start_server(tools, server, rundir,
                                                                wl.get("tls", False))
                        entry["port"] = port
                        entry["server_pid"] = serving
                        lg = run_loadgen(tools, server, port, serving, wl, args.connect_timeout)
                        entry["loadgen"] = {k: v for k, v in lg.items() if k != "result"}
                        entry["result"] = lg["result"]
                        entry["server_died"] = (proc.poll() is not None
                                                or not os.path.exists(f"/proc/{serving}"))
                    except RuntimeError as e:
                        entry["error"] = str(e)
                    finally:
                        if proc is not None:
                            entry["server_exit"] = stop(proc)
                            if log and (entry.get("server_died") or entry.get("error")):
                                entry["server_log_tail"] = tail(log)
                    res = entry.get("result") or {}
                    brief = ", ".join(f"{k}={res[k]}" for k in
                                      ("connected", "deliveries_per_s", "lat_p50_ms", "lat_p99_ms",
                                       "lost", "publish_lag_max_ms", "rss_per_conn_bytes", "conn_per_s",
                                       "slow_closed",
                                       "server_cpu_pct")
                                      if res.get(k) is not None)
                    if entry.get("error"):
                        brief = "ERROR " + entry["error"].splitlines()[0]
                    elif not res:
                        lgi = entry.get("loadgen", {})
                        brief = (f"no result (rc {lgi.get('rc')}, timed out {lgi.get('timed_out')}): "
                                 + " | ".join((lgi.get("stderr_tail") or "").splitlines()[-3:]))
                    print(f"[{n}/{total}] rep {rep + 1} {wl['id']} {server}: {brief}", file=sys.stderr,
                          flush=True)
                    data["runs"].append(entry)
                    save()
                    time.sleep(PAUSE)
    except KeyboardInterrupt:
        print("bench: interrupted; summarizing what ran", file=sys.stderr)
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
        save()

    md = summarize(data)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
