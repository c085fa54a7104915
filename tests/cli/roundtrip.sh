#!/usr/bin/env bash
# The whole chain at scale: a 10,000-read export with images (about 1.2 GB) is
# sealed, verified by the auditor's program against the box's identity and log
# export, released with a button press, and opened by the recipient; every
# output file's SHA-256 equals the ingested file's.
# SBX_ROUNDTRIP_READS overrides the count (the sanitizer run uses fewer).
. "$(dirname "$0")/../lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"

N=${SBX_ROUNDTRIP_READS:-10000}
T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-roundtrip.XXXXXX")
SIMPID=
cleanup() {
	[ -n "$SIMPID" ] && kill "$SIMPID" 2>/dev/null && wait "$SIMPID" 2>/dev/null
	swtpm_stop "$T/tpm" >/dev/null 2>&1; rm -rf "$T"
}
trap cleanup EXIT
swtpm_start "$T/tpm" || { fail "swtpm starts"; done_testing; exit 1; }
SB="$SBX_BIN/sealbox"
SIM="$SBX_BIN/sealbox-gpiosim"
export SEALBOX_STATE="$T/state"
"$SIM" serve "$T/gpio.sock" --quiet & SIMPID=$!
for _ in $(seq 50); do [ -S "$T/gpio.sock" ] && break; sleep 0.1; done
export SEALBOX_GPIO="sim:$T/gpio.sock"

P="$T/pki"; mkdir -p "$P"
openssl ecparam -name prime256v1 -genkey -noout -out "$P/ca.key" 2>/dev/null
openssl req -x509 -new -key "$P/ca.key" -subj "/O=Court/CN=Court CA" -days 3650 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$P/ca.pem" 2>/dev/null
openssl ecparam -name secp384r1 -genkey -noout -out "$P/r.key" 2>/dev/null
openssl req -new -key "$P/r.key" -subj "/O=DA/CN=Recipient" -out "$P/r.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,keyAgreement\n' > "$P/ext"
openssl x509 -req -in "$P/r.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial -days 30 \
	-extfile "$P/ext" -out "$P/r.pem" 2>/dev/null

"$SB" init --operator tech1 >/dev/null || fail "init"
"$SB" trust add --role prosecutor "$P/ca.pem" --operator admin >/dev/null || fail "trust add"
"$SB" recipient add r "$P/r.pem" --role prosecutor --attestation A-1 --operator admin >/dev/null || fail "recipient add"
"$SB" hold open BIG-1 --authority W-1 --purpose criminal-investigation --operator tech1 >/dev/null
"$SBX_BIN/tests/tools/gen_reads" --out "$T/ex" --count "$N" --seed 11 --format csv >/dev/null || fail "gen_reads"
CSV=$(ls "$T"/ex/*.csv)
NIMG=$(find "$T/ex" -type f \( -name '*.jpg' -o -name '*.png' \) | wc -l)
check "the export holds $N reads and $NIMG images" test "$(($(wc -l < "$CSV") - 1))" -eq "$N"

expect_exit 0 "$N reads with images seal" "$SB" ingest BIG-1 "$CSV" --operator tech1 --json
B=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bundle"])')
"$SB" identity --out "$T/identity.sbxi" >/dev/null
"$SB" bundle export "$B" --out "$T/audit" >/dev/null || fail "bundle export"
"$SB" log export "$T/log.sbxl" --operator auditor1 >/dev/null || fail "log export"
expect_exit 0 "sealbox-verify accepts it against the identity and the log export" \
	"$SBX_BIN/sealbox-verify" "$T/audit/$B.sbx" --identity "$T/identity.sbxi" \
	--ek-ca "$SBX_TEST_EKCA" --log "$T/log.sbxl"

( "$SIM" wait-led "$T/gpio.sock" amber=blink --timeout-ms 60000 >/dev/null && sleep 0.2 &&
  "$SIM" press "$T/gpio.sock" >/dev/null ) & H=$!
expect_exit 0 "released with a button press" "$SB" release BIG-1 --to r --purpose prosecution \
	--authority O-1 --operator tech1 --out "$T/rel" --timeout 60
wait $H
expect_exit 0 "the recipient opens it" "$SBX_BIN/sealbox-open" "$T/rel/$B.sbx" --key "$P/r.key" \
	--cert "$P/r.pem" --out "$T/opened"

# Every image the export held comes out with the same bytes, under its read id.
python3 - "$CSV" "$T/ex" "$T/opened" <<'PY' && ok "every image's SHA-256 equals the ingested file's" || fail "image hashes"
import csv, hashlib, os, sys, glob
src_csv, src_dir, out = sys.argv[1:]
def h(p): return hashlib.sha256(open(p, "rb").read()).hexdigest()
out_imgs = {}
for p in glob.glob(os.path.join(out, "**", "images", "*"), recursive=True):
    out_imgs.setdefault(h(p), []).append(p)
n = 0
with open(src_csv, newline="") as f:
    for row in csv.DictReader(f):
        for col in ("plate_image", "overview_image"):
            if row.get(col):
                d = h(os.path.join(src_dir, row[col]))
                assert d in out_imgs, (row[col], "missing from the opened release")
                n += 1
print("#", n, "images compared")
assert n > 0
PY
python3 - "$T/opened" "$N" <<'PY' && ok "reads.jsonl and reads.csv hold every read" || fail "reads"
import glob, os, sys
out, n = sys.argv[1], int(sys.argv[2])
jl = glob.glob(os.path.join(out, "**", "reads.jsonl"), recursive=True)[0]
cs = glob.glob(os.path.join(out, "**", "reads.csv"), recursive=True)[0]
assert sum(1 for _ in open(jl)) == n
assert sum(1 for _ in open(cs)) == n + 1
PY
check "the opened reads.jsonl is the sealed one (bundle verify --decrypt authenticates the same items)" \
	"$SB" bundle verify "$B" --decrypt --operator auditor1
expect_exit 0 "log verify" "$SB" log verify
done_testing
