#!/usr/bin/env bash
# Makes sure the Debian 12 packages sealbox needs are installed.  As root it
# installs what is missing; otherwise it prints the exact command and fails.
# Safe to re-run: it does nothing when everything is present.
#   tests/lib/deps.sh check [PKG...]   the build's packages, plus PKG...
#                                      (make analyze adds its analyzers)
set -u
[ "${1:-}" = check ] && shift
PKGS="build-essential pkg-config libssl-dev libarchive-dev libtss2-dev libsqlite3-dev
libgpiod-dev swtpm swtpm-tools tpm2-tools libarchive-tools sqlite3 openssl clang $*"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq $missing >/dev/null || {
		echo "deps: apt-get install failed" >&2; exit 1; }
else
	echo "sealbox needs these Debian packages:$missing" >&2
	echo "run:  sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
