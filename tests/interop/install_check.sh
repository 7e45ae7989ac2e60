#!/usr/bin/env bash
# Installs a build as a packager would (DESTDIR, prefix /usr) and checks the layout: the
# binaries run, the man pages render without warnings, the systemd unit is configured
# (no @VARS@) and passes systemd-analyze verify where systemd-analyze exists.
# usage: install_check.sh BUILD_DIR SOURCE_DIR VERSION
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
version=$3
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
fails=0
passes=0

check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then
		echo "ok   $what"
		passes=$((passes + 1))
	else
		echo "FAIL $what"
		fails=$((fails + 1))
	fi
}
cache() { # cache VAR DEFAULT: a value from the build's CMakeCache.txt
	local v
	v=$(sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt")
	echo "${v:-$2}"
}
silent() { # silent COMMAND...: succeeds when COMMAND does and prints nothing on stderr
	local err
	err=$("$@" 2>&1 >/dev/null) && [ -z "$err" ] || { echo "$err" | head -5 >&2; return 1; }
}

if ! DESTDIR="$root" cmake --install "$build" --prefix /usr >"$root.log" 2>&1; then
	cat "$root.log"
	rm -f "$root.log"
	echo "FAIL cmake --install $build --prefix /usr"
	echo "0 passed, 1 failed"
	exit 1
fi
rm -f "$root.log"
u=$root/usr

for b in switchboard switchboard-cli; do
	check "bin/$b is installed and executable" test -f "$u/bin/$b" -a -x "$u/bin/$b"
	check "bin/$b --version runs" silent "$u/bin/$b" --version
done
check "switchboard --version names the project's version" \
	grep -qF "$version" <("$u/bin/switchboard" --version)

plain() { test -f "$1" -a -s "$1" -a ! -x "$1"; }
man_pages=(man1/switchboard.1 man1/switchboard-cli.1 man5/switchboard.json.5)
for m in "${man_pages[@]}"; do
	f=$u/share/man/$m
	check "share/man/$m is installed (not executable)" plain "$f"
	check "share/man/$m renders with groff -ww and no warning" silent groff -man -ww -z "$f"
	if command -v man >/dev/null; then
		check "share/man/$m renders with man --warnings and no warning" \
			silent env LC_ALL=C.UTF-8 MANWIDTH=80 MANPAGER=cat man --warnings -l "$f"
	fi
	name=$(basename "$m")
	check "share/man/$m is titled ${name%.*}(${name##*.})" \
		grep -qi "^\.TH ${name%.*} ${name##*.} " "$f"
done

doc=$u/share/doc/switchboard
check "share/doc/switchboard/switchboard.example.json" cmp -s "$src/switchboard.example.json" \
	"$doc/switchboard.example.json"
for d in "$src"/docs/*.md; do
	check "share/doc/switchboard/$(basename "$d")" cmp -s "$d" "$doc/$(basename "$d")"
done
if [ -d "$src/client-demo/web" ]; then
	check "share/switchboard/web holds client-demo/web" diff -r "$src/client-demo/web" \
		"$u/share/switchboard/web"
else
	check "no share/switchboard/web without client-demo/web" test ! -e "$u/share/switchboard"
fi

config=$(cache SWITCHBOARD_CONFIG_FILE /etc/switchboard/switchboard.json)
if [ "$(cache INSTALL_CONFIG OFF)" = ON ]; then
	check "$config is the example" cmp -s "$src/switchboard.example.json" "$root$config"
else
	check "nothing is installed outside the prefix" \
		test -z "$(find "$root" -mindepth 1 -maxdepth 1 ! -name usr)"
fi

unit=$u/$(cache SYSTEMD_UNITDIR lib/systemd/system)/switchboard.service
check "the systemd unit is installed" plain "$unit"
check "the unit has no unsubstituted @VARS@" test -z "$(grep -E '@[A-Za-z_]+@' "$unit")"
has() { grep -qx -- "$1" "$unit" || { echo "missing: $1" >&2; return 1; }; }
for line in "ExecStart=/usr/bin/switchboard" "Environment=SWITCHBOARD_CONFIG=$config" \
	"DynamicUser=yes" "ProtectSystem=strict" "ProtectHome=yes" "NoNewPrivileges=yes" \
	"PrivateTmp=yes" "LimitNOFILE=65536" "Restart=on-failure" \
	'ExecReload=/bin/kill -HUP $MAINPID' "KillSignal=SIGTERM"; do
	check "the unit says $line" has "$line"
done
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
check "TimeoutStopSec ($stop s) is above the default drain_period (10 s)" test "${stop:-0}" -gt 10

if command -v systemd-analyze >/dev/null; then
	# verify runs the unit's binary path and its man: pages, so point both into DESTDIR.
	mkdir -p "$root/verify"
	sed "s#^ExecStart=/usr/#ExecStart=$u/#" "$unit" >"$root/verify/switchboard.service"
	check "systemd-analyze verify passes" silent env MANPATH="$u/share/man" \
		systemd-analyze verify "$root/verify/switchboard.service"
else
	echo "skip systemd-analyze verify (systemd-analyze is not installed)"
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
