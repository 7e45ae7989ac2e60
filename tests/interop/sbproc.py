"""Shared by the Python end-to-end tests (and bench/smoke.py): start the real server on
a free loopback port with a given configuration, stop it, and collect check results."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def start(binary, config, env=None, cwd=None, args=()):
    """Starts binary with config (a dict) on 127.0.0.1:0, with env (a dict, None: this
    process's environment) in cwd (None: this one) and args (more command-line options,
    such as ["--log-format", "json"]); returns (process, port). The process's log_lines
    collects what the server logs from then on."""
    cfg = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    # SIGTERM closes everyone at once unless a test is about the drain itself.
    config = dict(config)
    config.setdefault("drain_period", 0)
    json.dump(config, cfg)
    cfg.close()
    proc = subprocess.Popen([os.path.abspath(binary), "--config", cfg.name, "--host", "127.0.0.1", "--port", "0",
                             *args],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    port = None
    for _ in range(50):
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", proc.stderr.readline())
        if m:
            port = int(m.group(1))
            break
    os.unlink(cfg.name)
    proc.log_lines = []  # the server's log from here on, for checks on what it said
    threading.Thread(target=lambda: [proc.log_lines.append(line) for line in proc.stderr],
                     daemon=True).start()
    if port is None:
        proc.kill()
        sys.exit("server did not start")
    return proc, port


def stop(proc, timeout=15):
    """SIGTERM, and a check that the server exits 0 in time."""
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = f"killed after {timeout} s"
    check(rc == 0, f"server exits 0 after SIGTERM (got {rc})")


def summary():
    """Prints the outcome; returns the exit status."""
    print(f"{len(FAILS)} failed" if FAILS else "all passed", flush=True)
    return 1 if FAILS else 0
