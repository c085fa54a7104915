#!/usr/bin/env bash
# Makes the tamper campaigns' inputs with the real appliance on a fresh
# swtpm (never a mock): a box, a recipient PKI, a bundle of exactly
# BUNDLE_BYTES bytes (with its custody file), a bundle of exactly
# RELEASE_BYTES bytes released to a prosecutor (make_release: the release
# step without the button), and a custody-log export of exactly RECORDS
# records (tests/tools/logfill for the bulk).
#
#   mkinputs.sh DIR [BUNDLE_BYTES [RELEASE_BYTES [RECORDS]]]
#       defaults 65536, 1048576, 10000; a size below 1000 is a read count
#       instead (one seal, no search: the quick campaign)
#
# Writes into DIR: identity.sbxi ekca.pem small.sbx small.custody
# big.sbx big.release ada.key ada.pem log.sbxl sizes.txt; "ok" last, so a
# complete DIR is reused as is.
set -u
DIR=$1
BUNDLE_BYTES=${2:-65536}
RELEASE_BYTES=${3:-1048576}
RECORDS=${4:-10000}
: "${SBX_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${SBX_BIN:=$SBX_TOP/${BUILD:-build/release}}"
. "$SBX_TOP/tests/lib/swtpm.sh"

[ -f "$DIR/ok" ] && exit 0
rm -rf "$DIR"
mkdir -p "$DIR"
W=$(mktemp -d "${TMPDIR:-/tmp}/sbx-tamper-in.XXXXXX")
trap 'swtpm_stop "$W/tpm" >/dev/null 2>&1; rm -rf "$W"' EXIT
die() { echo "mkinputs: $*" >&2; exit 1; }

swtpm_start "$W/tpm" || die "swtpm does not start"
SB="$SBX_BIN/sealbox"
export SEALBOX_STATE="$W/state"
"$SB" init --operator tech1 >/dev/null || die "init"
"$SB" identity --out "$DIR/identity.sbxi" >/dev/null || die "identity"
cp "$SBX_TEST_EKCA" "$DIR/ekca.pem"
P="$W/pki"; mkdir -p "$P"
openssl ecparam -name prime256v1 -genkey -noout -out "$P/ca.key" 2>/dev/null
openssl req -x509 -new -key "$P/ca.key" -subj "/O=Denver DA/CN=prosecutor-ca" -days 3650 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	-out "$P/ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/ada.key" 2>/dev/null
openssl req -new -key "$DIR/ada.key" -subj "/O=Denver DA/CN=ada" -out "$P/ada.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,keyAgreement,digitalSignature\n' > "$P/ada.ext"
openssl x509 -req -in "$P/ada.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial \
	-days 365 -extfile "$P/ada.ext" -out "$DIR/ada.pem" 2>/dev/null || die "PKI"
"$SB" trust add --role prosecutor "$P/ca.pem" --operator admin >/dev/null || die "trust add"
"$SB" recipient add ada "$DIR/ada.pem" --role prosecutor --attestation ATT-1 --operator admin \
	>/dev/null || die "recipient add"
"$SB" hold open C-1 --authority W-1 --purpose criminal-investigation --operator tech1 >/dev/null \
	|| die "hold open"

# A CSV of `count` reads whose camera names carry `extra` bytes in all:
# the bundle grows monotonically with both, so a search hits any size.
# (awk, not python: starting python costs a second here, per call.)
mkcsv() {   # count, extra, out
	TZ=UTC awk -v n="$1" -v extra="$2" -v t0=$(( $(date +%s) - 3600 )) 'BEGIN {
		print "vendor_read_id,plate,captured_at,camera_id,camera_name"
		pad = sprintf("%100s", ""); gsub(/ /, "x", pad)
		for (i = 0; i < n; i++) {
			k = extra < 100 ? extra : 100
			extra -= k
			printf "r%06d,P%05d,%s,cam%d,n%s\n", i, (i * 7919) % 100000,
			       strftime("%Y-%m-%dT%H:%M:%SZ", t0 - i), i % 17, substr(pad, 1, k)
		}
		if (extra > 0) { print "extra too large for the count" > "/dev/stderr"; exit 1 }
	}' > "$3"
}
# Seals the CSV and prints "<bundle id> <size>".
seal() {   # count, extra
	local csv="$W/in-$1-$2.csv" id
	mkcsv "$1" "$2" "$csv" || return 1
	id=$("$SB" ingest C-1 "$csv" --operator tech1 --json |
	     grep -o '"bundle": *"[0-9a-f]\{64\}"' | grep -o '[0-9a-f]\{64\}') || return 1
	echo "$id $(stat -c %s "$SEALBOX_STATE/bundles/$id.sbx")"
}
# The bundle of exactly `want` bytes: the read count from two probes (the
# largest whose bare bundle is below want), then a binary search on the
# extra bytes.  Prints "<id>".
exact() {   # want
	local want=$1 id s0 s1 per n lo hi mid s
	if [ "$want" -lt 1000 ]; then   # any size: `want` reads, one seal
		read -r id s <<<"$(seal "$want" 0)" || return 1
		echo "$id"
		return 0
	fi
	read -r id s0 <<<"$(seal 10 0)" || return 1
	read -r id s1 <<<"$(seal 110 0)" || return 1
	per=$(( (s1 - s0) / 100 ))
	[ "$per" -gt 0 ] || return 1
	n=$(( 10 + (want - s0) / per - 2 ))
	[ "$n" -ge 1 ] || n=1
	read -r id s <<<"$(seal "$n" 0)" || return 1
	while [ "$s" -ge "$want" ] && [ "$n" -gt 1 ]; do
		n=$((n - 1 - (s - want) / per))
		[ "$n" -ge 1 ] || n=1
		read -r id s <<<"$(seal "$n" 0)" || return 1
	done
	[ "$s" -eq "$want" ] && { echo "$id"; return 0; }
	lo=0 hi=$((n * 100))
	while [ $lo -lt $hi ]; do   # smallest extra whose bundle is >= want
		mid=$(( (lo + hi) / 2 ))
		read -r id s <<<"$(seal "$n" "$mid")" || return 1
		if [ "$s" -ge "$want" ]; then hi=$mid; else lo=$mid; lo=$((lo + 1)); fi
	done
	read -r id s <<<"$(seal "$n" "$lo")" || return 1
	[ "$s" -eq "$want" ] || { echo "no bundle of $want bytes ($n reads, +$lo: $s)" >&2; return 1; }
	echo "$id"
}
SMALL=$(exact "$BUNDLE_BYTES") || die "small bundle"
cp "$SEALBOX_STATE/bundles/$SMALL.sbx" "$DIR/small.sbx"
"$SB" bundle export "$SMALL" --out "$W/exp" >/dev/null || die "bundle export"
cp "$W/exp/$SMALL.custody" "$DIR/small.custody"
BIG=$(exact "$RELEASE_BYTES") || die "big bundle"
cp "$SEALBOX_STATE/bundles/$BIG.sbx" "$DIR/big.sbx"
"$SBX_BIN/tests/tools/make_release" "$SEALBOX_STATE" "$BIG" "$DIR/ada.pem" "$DIR/big.release" \
	--operator tech1 --purpose prosecution --authority "Order 9" --attestation ATT-1 \
	--name ada --role prosecutor >/dev/null || die "make_release"

have=$(sqlite3 "$SEALBOX_STATE/sealbox.db" 'SELECT count(*) FROM records') || die "record count"
# (`log export` records itself after writing the export.)
need=$((RECORDS - have))
[ "$need" -ge 1 ] || die "already $have records, more than $RECORDS"
"$SBX_BIN/tests/tools/logfill" "$SEALBOX_STATE" "$need" || die "logfill"
"$SB" log export "$DIR/log.sbxl" --operator auditor1 >/dev/null || die "log export"
{
	echo "small.sbx $(stat -c %s "$DIR/small.sbx") bytes, bundle $SMALL"
	echo "big.sbx $(stat -c %s "$DIR/big.sbx") bytes, bundle $BIG"
	echo "big.release $(stat -c %s "$DIR/big.release") bytes"
	echo "log.sbxl $(stat -c %s "$DIR/log.sbxl") bytes"
} > "$DIR/sizes.txt"
touch "$DIR/ok"
