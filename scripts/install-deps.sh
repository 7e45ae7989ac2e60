#!/usr/bin/env bash
# Installs what Switchboard needs to build and test, from Debian's packages (and, with
# --test, the Node `ws` package used by the interop tests, from npm).
# As root it runs apt-get itself; otherwise it prints the exact command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# libev-dev and libwebsockets-evlib-ev: the server's event loop (lws's libev plugin).
pkgs=(build-essential cmake pkg-config libwebsockets-dev libwebsockets-evlib-ev libev-dev libjansson-dev libssl-dev
      libcriterion-dev libcurl4-openssl-dev python3-websockets curl openssl)

command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
# The install_layout test renders the man pages; proxy_end_to_end starts its own nginx;
# format_follows_clang_format runs clang-format.
if [ "$want_test" -eq 1 ]; then
	pkgs+=(groff-base man-db nginx-light clang-format)
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
install_npm() {
	[ "$want_test" -eq 1 ] || return 0
	[ -d tests/interop/node_modules/ws ] && return 0
	echo "install-deps: npm ci in tests/interop (Node ws for the interop tests)"
	npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error >/dev/null
}

if [ ${#missing[@]} -eq 0 ]; then
	install_npm
	exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	# nginx's postinst would start a system nginx on port 80: no service starts meanwhile
	# (a policy-rc.d of our own, only if there is none, removed on exit).
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# temporary, from switchboard scripts/install-deps.sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	install_npm
else
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root:  sudo sh -c '$cmd'" >&2
	exit 1
fi
