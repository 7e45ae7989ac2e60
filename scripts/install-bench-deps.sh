#!/usr/bin/env bash
# Installs the peers the benchmark compares Switchboard with (bench/README.md):
#   - nginx with the nchan module, from Debian (packages nginx + libnginx-mod-nchan);
#   - Node `ws` and `socket.io` for the broadcast and room servers in bench/peers/node
#     (npm ci, from its lock file).
# As root it runs apt-get itself; otherwise it prints the exact command to run.
# Idempotent and silent when everything is already there.
#
# The benchmark starts its own nginx in the foreground on a free loopback port with a
# config of its own; the system nginx service is never wanted. Debian's nginx postinst
# would start it on port 80, so during the install a policy-rc.d that refuses every
# service start is put in place (only if there is none already; it is removed again
# afterwards). Should a system nginx be running anyway after the install, the one this
# script just started (pid from /run/nginx.pid, only when there was none before) is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(nginx libnginx-mod-nchan)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
command -v taskset >/dev/null 2>&1 || pkgs+=(util-linux)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

install_npm() {
	local dir=bench/peers/node
	if [ -f "$dir/node_modules/ws/package.json" ] &&
		[ -f "$dir/node_modules/socket.io/package.json" ] &&
		[ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
		return 0
	fi
	echo "install-bench-deps: npm ci in $dir (Node ws and socket.io for the Node peers)"
	npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
}

if [ ${#missing[@]} -eq 0 ]; then
	install_npm
	exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "install-bench-deps: missing packages: ${missing[*]}" >&2
	echo "install-bench-deps: run as root:  sudo sh -c '$cmd'" >&2
	echo "install-bench-deps: (then stop the nginx service it may start on port 80:  sudo service nginx stop)" >&2
	exit 1
fi

echo "install-bench-deps: installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# temporary, from switchboard scripts/install-bench-deps.sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi
had_pid=0
[ -s /run/nginx.pid ] && had_pid=1
cleanup() { [ "$made_policy" -eq 1 ] && rm -f "$policy"; return 0; }
trap cleanup EXIT

apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null

# Belt and braces: if the install started a system nginx anyway, stop that one.
if [ "$had_pid" -eq 0 ] && [ -s /run/nginx.pid ]; then
	pid=$(cat /run/nginx.pid)
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ]; then
		echo "install-bench-deps: stopping the nginx service the package started (pid $pid)"
		kill -QUIT "$pid" 2>/dev/null || true
	fi
fi
install_npm
