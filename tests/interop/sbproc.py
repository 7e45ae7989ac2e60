"""Shared by the Python end-to-end tests (and bench/smoke.py): start the real server on
a free loopback port with a given configuration, stop it (or kill what is left), make
self-signed test certificates, and collect check results."""
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
    """Prints and records the outcome; returns cond, so that a test can stop after a
    failed step."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def start(binary, config, env=None, cwd=None, args=(), drain_period=0, echo=False, path=None):
    """Starts binary with config (a dict) on 127.0.0.1:0, with env (a dict, None: this
    process's environment) in cwd (None: this one) and args (more command-line options,
    such as ["--log-format", "json"]); returns (process, port). The process's log_lines
    collects what the server logs from then on. drain_period goes into the configuration
    unless it has one (None: the server's default); echo copies what the server says
    until it listens to stderr. path: the file the configuration is written to, which
    stays (for SIGHUP); None: a temporary file, removed once the server listens."""
    cfg = open(path, "w") if path else tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    # SIGTERM closes everyone at once unless a test is about the drain itself.
    config = dict(config)
    if drain_period is not None:
        config.setdefault("drain_period", drain_period)
    json.dump(config, cfg)
    cfg.close()
    proc = subprocess.Popen([os.path.abspath(binary), "--config", cfg.name, "--host", "127.0.0.1", "--port", "0",
                             *args],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    port = None
    for _ in range(50):
        line = proc.stderr.readline()
        if echo:
            sys.stderr.write(line)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if not path:
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


def kill_if_running(proc):
    """SIGKILLs and reaps proc unless it has exited already."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def make_cert(directory, name, days):
    """A self-signed RSA certificate for CN=name valid for days, written to
    directory/name.crt with its key in directory/name.key; returns (crt, key)."""
    crt, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", str(days), "-subj", "/CN=" + name],
                   check=True, capture_output=True)
    return crt, key


def run_all(tests):
    """Runs each test function after a line naming it; returns summary()."""
    for t in tests:
        print(f"--- {t.__name__}", flush=True)
        t()
    return summary()


def summary():
    """Prints the outcome; returns the exit status."""
    print(f"{len(FAILS)} failed" if FAILS else "all passed", flush=True)
    return 1 if FAILS else 0
