#!/usr/bin/python3
"""The documentation quotes the binary and the files as they are (issue 9 defect 11):
- README.md's `./build/switchboard --help` block is what --help prints, and its "Two
  commands" section tells about make install (PREFIX, DESTDIR), docs/deployment.md and
  the signals (drain with 4012, SIGHUP);
- docs/configuration.md quotes switchboard.example.json as it is, and its Keys table has
  a row for every key of the effective configuration (`--check-config` of the example),
  every namespace key, the secret forms, the SWITCHBOARD_* variables and --check-config;
- switchboard.json(5) names every top-level key.

usage: docs_e2e.py PATH/TO/switchboard SOURCE_DIR"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sbproc import check, run_all  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
SRC = os.path.abspath(sys.argv[2])


def read(rel):
    with open(os.path.join(SRC, rel)) as f:
        return f.read()


def section(text, title):
    """The body of the markdown section `## title`, up to the next `## `."""
    m = re.search(r"^## " + re.escape(title) + r"\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    return m.group(1) if m else ""


def test_readme():
    readme = read("README.md")
    two = section(readme, "Two commands")
    m = re.search(r"```\n\$ \./build/switchboard --help\n(.*?)```\n", two, re.S)
    check(m is not None, "README: the Two commands section quotes --help")
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10).stdout
    check(m is not None and m.group(1) == out, "README: the quoted --help is what the binary prints")
    for word in ("make install", "PREFIX", "DESTDIR", "docs/deployment.md", "drain_period",
                 "4012", "SIGHUP"):
        check(word in two, f"README: Two commands mentions {word}")
    check("closes every connection with 1001 and exits 0" not in readme,
          "README: no longer says SIGTERM closes every connection with 1001")


def keys_of(obj, prefix=""):
    """Dotted keys of the effective configuration: a {per_second, burst} object, a list
    or null is one key; namespaces and default_namespace are checked apart."""
    for k, v in obj.items():
        name = prefix + k
        if name in ("namespaces", "default_namespace"):
            yield name
        elif isinstance(v, dict) and set(v) != {"per_second", "burst"}:
            yield from keys_of(v, name + ".")
        else:
            yield name


def test_configuration():
    doc = read("docs/configuration.md")
    example = read("switchboard.example.json")
    m = re.search(r"## Example\n.*?```json\n(.*?)```", doc, re.S)
    check(m is not None and m.group(1).strip() == example.strip(),
          "configuration.md quotes switchboard.example.json as it is")
    r = subprocess.run([BIN, "--check-config", os.path.join(SRC, "switchboard.example.json")],
                       capture_output=True, text=True, timeout=10)
    check(r.returncode == 0, f"--check-config of the example exits 0 ({r.stderr.strip()})")
    eff = json.loads(r.stdout)
    keys = section(doc, "Keys")
    rows = set(re.findall(r"^\| `([^`]+)`", keys, re.M)) | set(re.findall(r"^\| `[^`]+`, `([^`]+)`", keys, re.M))
    for k in keys_of(eff):
        # tls is null here: its row is tls.cert, tls.key.
        want = "tls.cert" if k == "tls" else k
        check(want in rows, f"configuration.md: the Keys table has {want}")
    for k in ("auth.jwt.public_key", "drain_period", "log_format"):
        check(k in rows, f"configuration.md: the Keys table has {k}")
    ns_rows = set(re.findall(r"^\| `([a-z_]+)` \|", keys, re.M))
    for k in eff["default_namespace"]:
        check(k in ns_rows, f"configuration.md: the namespace table has {k}")
    for word in ('{"file": "', '{"env": "', "SWITCHBOARD_CONFIG", "SWITCHBOARD_HOST",
                 "SWITCHBOARD_PORT", "SWITCHBOARD_LOG_LEVEL", "SWITCHBOARD_LOG_FORMAT",
                 "switchboard --check-config FILE", "`webhooks[].secret`", "`api_keys[].key`",
                 "`auth.jwt.hmac_secret`"):
        check(word in doc, f"configuration.md mentions {word}")
    check(re.search(r"Options win over the environment, which wins over the file, which wins"
                    r"\s+over\s+the defaults", doc) is not None,
          "configuration.md: flags > environment > file > defaults")
    man = read("docs/man/switchboard.json.5")
    for k in eff:
        name = "tls.cert" if k == "tls" else k
        check(re.search(r"^\.BR? " + re.escape(name) + r"\b", man, re.M) is not None,
              f"switchboard.json(5) has an entry for {name}")


def main():
    return run_all((test_readme, test_configuration))


if __name__ == "__main__":
    sys.exit(main())
