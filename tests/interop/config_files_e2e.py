#!/usr/bin/python3
"""Files named by the configuration (issue 9 defect 11): a TLS certificate or key, or a JWT
public key, that is missing, not PEM, or (for tls.key) not the certificate's, is a
configuration error: exit 2 before the server starts, with one line naming the file, the
key and the reason, also from --check-config. Good files start the server.

usage: config_files_e2e.py PATH/TO/switchboard. Needs openssl; loopback only."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sbproc import check, make_cert, start, stop, summary  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
TMP = tempfile.mkdtemp(prefix="sb-files-")


def path(name):
    return os.path.join(TMP, name)


def refused(what, config, key, detail):
    """config is refused with exit 2 by the server and by --check-config, in one line that
    names the configuration file, key (a configuration key) and detail."""
    cfg = path("c.json")
    with open(cfg, "w") as f:
        json.dump({"host": "127.0.0.1", "port": 0, **config}, f)
    for args in (["--config", cfg], ["--check-config", cfg]):
        try:
            r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            check(False, f"{what} ({args[0]}): the server started")
            continue
        lines = r.stderr.splitlines()
        line = lines[0] if lines else ""
        ok = r.returncode == 2
        check(ok, f"{what} ({args[0]}): exit 2" + ("" if ok else f" (got {r.returncode}: {r.stderr!r})"))
        ok = line.startswith(f"switchboard: configuration error: {cfg}: {key}: ") and detail in line
        check(ok, f"{what} ({args[0]}): the message names {key}" + ("" if ok else f": {line!r}"))
        ok = len(lines) == 1
        check(ok, f"{what} ({args[0]}): one line, no lws output" + ("" if ok else f": {lines!r}"))


def starts(what, config):
    proc, port = start(BIN, config)  # exits the test if the server does not start
    check(port is not None, f"{what}: the server starts")
    stop(proc)


def main():
    a_crt, a_key = make_cert(TMP, "a", 1)
    _, b_key = make_cert(TMP, "b", 1)
    pub = path("jwt.pub")
    subprocess.run(["openssl", "pkey", "-in", a_key, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    junk = path("junk.pem")
    with open(junk, "w") as f:
        f.write("this is not PEM\n")
    missing = path("missing.pem")

    refused("missing certificate", {"tls": {"cert": missing, "key": a_key}}, "tls.cert",
            f'cannot load "{missing}": No such file or directory')
    refused("missing key", {"tls": {"cert": a_crt, "key": missing}}, "tls.key",
            f'cannot load "{missing}": No such file or directory')
    refused("a key that is not the certificate's", {"tls": {"cert": a_crt, "key": b_key}},
            "tls.key", f'"{b_key}" does not match tls.cert "{a_crt}"')
    refused("garbage certificate", {"tls": {"cert": junk, "key": a_key}}, "tls.cert",
            f'cannot load "{junk}": no start line')
    refused("garbage key", {"tls": {"cert": a_crt, "key": junk}}, "tls.key",
            f'cannot load "{junk}": ')
    refused("missing public key", {"auth": {"jwt": {"public_key": missing}}},
            "auth.jwt.public_key", f"{missing}: cannot open: No such file or directory")
    refused("garbage public key", {"auth": {"jwt": {"public_key": junk}}},
            "auth.jwt.public_key", "no PEM public key found")
    starts("a matching certificate and key and a public key",
           {"tls": {"cert": a_crt, "key": a_key}, "auth": {"jwt": {"public_key": pub}}})
    shutil.rmtree(TMP, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
