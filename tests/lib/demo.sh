#!/usr/bin/env bash
# make demo: the box's workflow end to end on sample data, printed the way a
# technician would see it.  Starts its own software TPM and GPIO simulator and
# stops what it started.
set -u
cd "$(dirname "$0")/../.."
SBX_TOP=$PWD
BUILD=${BUILD:-build/release}
BIN="$PWD/$BUILD"
SB="$BIN/sealbox"
OUT=${DEMO_OUT:-$PWD/demo-out}
. tests/lib/swtpm.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run()  { printf '$ %s\n' "$*"; "$@"; }
die()  { printf '\ndemo FAILED: %s\n' "$*" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
SIMPID=
cleanup() {
	[ -n "$SIMPID" ] && kill "$SIMPID" 2>/dev/null && wait "$SIMPID" 2>/dev/null
	swtpm_stop "$OUT/tpm" >/dev/null 2>&1
}
trap cleanup EXIT

step "Start a fresh software TPM (swtpm, EK certificate from a test CA) and the button/LED simulator"
swtpm_start "$OUT/tpm" || die "swtpm"
echo "TPM:    $SEALBOX_TCTI"
"$BIN/sealbox-gpiosim" serve "$OUT/gpio.sock" --quiet &
SIMPID=$!
for _ in $(seq 50); do [ -S "$OUT/gpio.sock" ] && break; sleep 0.1; done
export SEALBOX_STATE="$OUT/box" SEALBOX_GPIO="sim:$OUT/gpio.sock"
echo "button: $SEALBOX_GPIO"

step "Provision the box"
run "$SB" init --operator installer || die "init"
run "$SB" identity --out "$OUT/identity.sbxi" | sed -n '1,4p'

step "Trust the court's certificate authority; register a prosecutor"
P="$OUT/pki"; mkdir -p "$P"
openssl ecparam -name prime256v1 -genkey -noout -out "$P/ca.key" 2>/dev/null
openssl req -x509 -new -key "$P/ca.key" -subj "/O=Denver District Court/CN=Sample Court Recipient CA" \
	-days 3650 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	-out "$P/ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$P/prosecutor.key" 2>/dev/null
openssl req -new -key "$P/prosecutor.key" -subj "/O=Denver District Attorney/CN=ADA Sample Prosecutor" \
	-out "$P/prosecutor.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,keyAgreement,digitalSignature\n' > "$P/ext.cnf"
openssl x509 -req -in "$P/prosecutor.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial \
	-days 365 -extfile "$P/ext.cnf" -out "$P/prosecutor.pem" 2>/dev/null
run "$SB" trust add --role prosecutor "$P/ca.pem" --operator admin.chen || die "trust add"
run "$SB" recipient add da-sample "$P/prosecutor.pem" --role prosecutor \
	--attestation "CRS-24-74-105 attestation 2026-311" --operator admin.chen || die "recipient add"

step "A hold for a forbidden purpose is refused, and the refusal logged"
run "$SB" hold open DEN-2026-0417 --authority "Warrant 26-CR-1183" \
	--purpose civil-immigration-enforcement --operator tech.garcia
echo "(exit code $?)"

step "Open a lawful hold"
run "$SB" hold open DEN-2026-0417 --authority "Warrant 26-CR-1183" \
	--purpose criminal-investigation --operator tech.garcia --days 30 || die "hold open"

step "Receive the LPR system's export for the case (300 sample reads with images)"
run "$BIN/tests/tools/gen_reads" --out "$OUT/media" --count 300 --seed 7 --format csv --archive zip >/dev/null || die "gen_reads"
EXPORT=$(ls "$OUT"/media/*.zip | head -n 1)
run "$SB" ingest DEN-2026-0417 "$EXPORT" --operator tech.garcia --source sample-vendor || die "ingest"

step "Release to the prosecutor: the box shows the request, amber blinks, the technician presses"
( "$BIN/sealbox-gpiosim" wait-led "$OUT/gpio.sock" amber=blink --timeout-ms 30000 >/dev/null &&
  sleep 1 && echo "   [technician reads the summary and presses the button]" &&
  "$BIN/sealbox-gpiosim" press "$OUT/gpio.sock" ) &
PRESS=$!
run "$SB" release DEN-2026-0417 --to da-sample --purpose prosecution \
	--authority "Discovery order 26-CR-1183-D" --operator tech.garcia --out "$OUT/release" \
	--timeout 60 || die "release"
wait "$PRESS"
run "$BIN/sealbox-gpiosim" leds "$OUT/gpio.sock"
ls -l "$OUT/release"

step "Export the custody log for the auditor"
run "$SB" log export "$OUT/custody-log.sbxl" --operator auditor.lee || die "log export"

step "The auditor verifies the released bundle and the log, offline, without keys"
run "$BIN/sealbox-verify" "$OUT"/release/*.sbx --identity "$OUT/identity.sbxi" \
	--ek-ca "$SBX_TEST_EKCA" --log "$OUT/custody-log.sbxl" || die "sealbox-verify"

step "The prosecutor opens the release on their own machine"
run "$BIN/sealbox-open" "$OUT"/release/*.sbx --key "$P/prosecutor.key" --cert "$P/prosecutor.pem" \
	--out "$OUT/opened" || die "sealbox-open"
ls "$OUT/opened" | head
echo "images: $(ls "$OUT/opened/images" 2>/dev/null | wc -l)"

step "Close the hold: the evidence is purged, the purge recorded"
run "$SB" hold close DEN-2026-0417 --operator tech.garcia || die "hold close"
run "$SB" log show
run "$SB" log verify || die "log verify"

step "Done"
cat <<EOT
outputs in $OUT:
  release/          what the prosecutor received (.sbx bundle + .release)
  opened/           what sealbox-open extracted: reads.csv, reads.jsonl, images/, custody.html, verification.json
  custody-log.sbxl  the custody log export; identity.sbxi the box's identity
EOT
