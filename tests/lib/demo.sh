#!/usr/bin/env bash
# make demo: the box's workflow end to end on sample data, printed the way a
# technician would see it.  Starts its own swtpm, stops what it started.
set -u
cd "$(dirname "$0")/../.."
SBX_TOP=$PWD
BUILD=${BUILD:-build/release}
SB="$PWD/$BUILD/sealbox"
OUT=${DEMO_OUT:-$PWD/demo-out}
. tests/lib/swtpm.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run()  { printf '$ %s\n' "$*"; "$@"; }

rm -rf "$OUT"
mkdir -p "$OUT"
trap 'swtpm_stop "$OUT/tpm" >/dev/null 2>&1' EXIT

step "Start a fresh software TPM (swtpm) with an EK certificate from a test CA"
swtpm_start "$OUT/tpm" || exit 1
echo "TPM: $SEALBOX_TCTI"
export SEALBOX_STATE="$OUT/box"

step "Provision the box"
run "$SB" init --operator installer || exit 1

step "The public identity an auditor pins"
run "$SB" identity --out "$OUT/identity.sbxi" | sed -n '1,4p'
openssl pkey -pubin -in <("$SB" identity --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["signing_key_pem"])') \
	-outform DER | sha256sum | sed 's/ .*/  <- SHA-256 of the signing key, computed by stock openssl/'

step "The policy in force"
run "$SB" policy show | sed -n '1,12p'

step "A hold for a forbidden purpose is refused, and the refusal logged"
run "$SB" hold open DEN-2026-0417 --authority "Warrant 26-CR-1183" \
	--purpose civil-immigration-enforcement --operator tech.garcia
echo "(exit code $?)"

step "Open a lawful hold"
run "$SB" hold open DEN-2026-0417 --authority "Warrant 26-CR-1183" \
	--purpose criminal-investigation --operator tech.garcia --days 30 || exit 1
run "$SB" hold list

step "Renew it under a new court order"
run "$SB" hold renew DEN-2026-0417 --authority "Order 26-CR-1183-B" --operator tech.garcia || exit 1

step "The custody log"
run "$SB" log show

step "Verify the log: records, Merkle tree, TPM-signed heads, TPM key and counter"
run "$SB" log verify || exit 1

step "Export it for an auditor"
run "$SB" log export "$OUT/custody-log.sbxl" --operator auditor.lee || exit 1
ls -l "$OUT/custody-log.sbxl"

step "Done"
echo "outputs in $OUT (identity.sbxi, custody-log.sbxl, box/)"
echo "Ingest, sealing and release join this demo as those issues land."
