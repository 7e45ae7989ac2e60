#!/usr/bin/env bash
# Installs what Switchboard needs to build and test, from Debian's packages.
# As root it runs apt-get itself; otherwise it prints the exact command to run.
set -euo pipefail

pkgs=(build-essential cmake pkg-config libwebsockets-dev libjansson-dev libssl-dev
      libcriterion-dev python3-websockets)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root:  sudo sh -c '$cmd'" >&2
	exit 1
fi
