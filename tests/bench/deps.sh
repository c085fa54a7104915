#!/usr/bin/env bash
# The Debian 12 packages `make bench` needs beyond the build's (tests/lib/deps.sh):
# the peers it compares against (gnupg, age, openssl), GNU time for the peak
# RSS, and python3 for the driver.  As root it installs what is missing;
# otherwise it prints the exact command and fails.  Safe to re-run.
set -u
PKGS="age gnupg time tar findutils coreutils openssl python3 swtpm swtpm-tools tpm2-tools libtss2-tcti-pcap0"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq $missing >/dev/null || {
		echo "bench deps: apt-get install failed" >&2; exit 1; }
else
	echo "make bench needs these Debian packages:$missing" >&2
	echo "run:  sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
