#!/usr/bin/env bash
# sealbox-verify on real bundles sealed by the real appliance on swtpm: a good
# bundle is VALID (exit 0); another box's identity, a flipped byte in each
# entry, a mutated custody file, a wrong policy, a truncated or modified log
# export are INVALID (exit 1); missing files and bad options are exit 2;
# --json parses and says valid true/false.
. "$(dirname "$0")/../lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"

SB="$SBX_BIN/sealbox"
V="$SBX_BIN/sealbox-verify"
if ! "$SB" ingest --help >/dev/null 2>&1 || ! "$SB" bundle --help >/dev/null 2>&1; then
	echo "ok 1 # SKIP 'sealbox ingest' / 'sealbox bundle' are not available yet"
	exit 0
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-verify.XXXXXX")
trap 'swtpm_stop "$T/tpm-b" >/dev/null 2>&1; swtpm_stop "$T/tpm" >/dev/null 2>&1; rm -rf "$T"' EXIT
unset SEALBOX_GPIO

# mutate: makes tampered copies, one per line of stdin, in one python run
# (its start-up is the slow part).  Each line: OUT SRC WHERE, and OUT gets
# SRC with one bit flipped at WHERE:
#   tar:MEMBER:N     byte N of tar member MEMBER (negative: from its end)
#   tar:MEMBER:s:STR the last byte of STR's first occurrence in MEMBER
#   tar:identity.sbxi:sign-end   the last byte of the identity's signing key
#   raw:N            byte N of the file (negative: from its end)
#   head:N, record:N byte N of a custody file's tree head / first record
#   sweep            OUT is a directory: one copy per sampled byte, across
#                    every tar header, entry, the payload and the end padding
# In OUT, "{id}" becomes the SHA-256 of the copy's manifest.json.
mutate() {
	python3 -c '
import hashlib, os, struct, sys, tarfile

def custody_parts(b):
    n = struct.unpack(">I", b[37:41])[0]
    off, first = 41, 41 + 4
    for _ in range(n):
        (l,) = struct.unpack(">I", b[off:off + 4]); off += 4 + l + 8
        off += 1 + 32 * b[off]
    return first, off

def put(path, data):
    if os.path.exists(path):
        os.unlink(path)
    open(path, "wb").write(data)

for line in sys.stdin:
    out, src, where = line.split()
    data = open(src, "rb").read()
    if where == "sweep":
        os.makedirs(out, exist_ok=True)
        with tarfile.open(src) as t:
            p = t.getmember("payload.enc")
        end = p.offset_data + p.size
        front = p.offset_data + 512
        offs = set(range(0, front, max(1, front // 32)))
        offs |= {p.offset_data + p.size // 2, end - 1}
        offs |= set(range(end, len(data), max(1, (len(data) - end) // 8)))
        for i in sorted(offs):
            b = bytearray(data); b[i] ^= 1
            put("%s/%08d.sbx" % (out, i), b)
        continue
    kind, _, arg = where.partition(":")
    if kind == "tar":
        member, _, arg = arg.partition(":")
        with tarfile.open(src) as t:
            m = t.getmember(member)
            body = t.extractfile(m).read()
        if arg.startswith("s:"):
            off = body.index(arg[2:].encode()) + len(arg) - 3
        elif arg == "sign-end":
            off = 41 + struct.unpack(">I", body[37:41])[0] - 1
        else:
            off = int(arg) if int(arg) >= 0 else m.size + int(arg)
        pos = m.offset_data + off
    elif kind in ("head", "record"):
        first, head = custody_parts(data)
        pos = (head if kind == "head" else first) + int(arg)
    else:
        pos = int(arg) if int(arg) >= 0 else len(data) + int(arg)
    b = bytearray(data); b[pos] ^= 1
    if "{id}" in out:
        with tarfile.open(fileobj=__import__("io").BytesIO(bytes(b))) as t:
            out = out.replace("{id}", hashlib.sha256(t.extractfile("manifest.json").read()).hexdigest())
    put(out, b)
'
}

# --- a box, a hold, a sealed bundle ---------------------------------------
swtpm_start "$T/tpm" || { fail "swtpm starts"; done_testing; exit 1; }
TCTI_A=$SEALBOX_TCTI
export SEALBOX_STATE="$T/state"
"$SB" init --operator tech1 > "$T/init.out" || fail "init"
ID=$(sed -n 's/^appliance id: //p' "$T/init.out")
"$SB" identity --out "$T/box.sbxi" >/dev/null || fail "identity --out"
"$SB" policy show | sed 1d > "$T/policy.conf"
"$SB" log export "$T/log0.sbxl" --operator auditor1 >/dev/null || fail "log export before the ingest"
"$SB" hold open C-1 --authority "Warrant 2026-114" --purpose criminal-investigation \
	--operator tech1 >/dev/null || fail "hold open"
"$SBX_BIN/tests/tools/gen_reads" --out "$T/in" --count 20 --seed 7 >/dev/null || fail "gen_reads"
expect_exit 0 "sealbox ingest seals a bundle" "$SB" ingest C-1 "$T/in/reads.csv" --operator tech1
BID=$(basename "$(ls "$SEALBOX_STATE"/bundles/*.sbx | head -n 1)" .sbx)
check "the bundle is named by a 64-hex id" test "${#BID}" -eq 64
mkdir -p "$T/out"
expect_exit 0 "sealbox bundle export" "$SB" bundle export "$BID" --out "$T/out"
B="$T/out/$BID.sbx"
C="$T/out/$BID.custody"
check "export wrote the bundle and its custody file" test -s "$B" -a -s "$C"
"$SB" log export "$T/log1.sbxl" --operator auditor1 >/dev/null || fail "log export 1"
"$SB" hold open C-2 --authority "Order 9" --purpose prosecution --operator tech2 >/dev/null ||
	fail "hold open C-2"
"$SB" log export "$T/log2.sbxl" --operator auditor1 >/dev/null || fail "log export 2"
PIN=(--identity "$T/box.sbxi" --ek-ca "$SBX_TEST_EKCA" --policy "$T/policy.conf")

# --- the good bundle ----------------------------------------------------------
expect_exit 0 "a good bundle with every option is VALID" \
	"$V" "$B" "${PIN[@]}" --log "$T/log2.sbxl" --since "$T/log1.sbxl"
printf '%s\n' "$OUT" > "$T/good.txt"
check "the report says VALID for the bundle" grep -q "^VALID: $B\$" "$T/good.txt"
check "the report's last line says VALID" sh -c "tail -n 1 '$T/good.txt' | grep -q '^VALID'"
check "no check failed or was skipped" sh -c "! grep -Eq '^  (FAILED|not run) ' '$T/good.txt'"
for c in container manifest name signature identity ek-chain pin ciphertext policy custody \
         log-head log-records log-ingest; do
	grep -Eq "^  ok +$c " "$T/good.txt" || fail "check $c passed"
done
check "the report names the case" grep -q 'case: *C-1 ' "$T/good.txt"
check "the report shows the appliance id" grep -q "appliance id: *$ID" "$T/good.txt"
expect_exit 0 "a good bundle alone (custody beside it) is VALID" "$V" "$B"
check "without --identity the pin is reported as not run" \
	sh -c "printf '%s' \"\$0\" | grep -Eq '^  not run +pin '" "$OUT"
expect_exit 0 "--quiet prints only verdicts" "$V" --quiet "$B" "${PIN[@]}"
check "--quiet: two lines" test "$(printf '%s\n' "$OUT" | wc -l)" -eq 2
expect_exit 0 "--custody FILE for one bundle" "$V" "$B" --custody "$C" "${PIN[@]}"
expect_exit 0 "the log export alone, with --since" "$V" --log "$T/log2.sbxl" --since "$T/log1.sbxl" \
	--identity "$T/box.sbxi"

# --json: one document; valid true; the manifest's facts.
expect_exit 0 "--json on a good bundle" "$V" --json "$B" "${PIN[@]}" --log "$T/log2.sbxl"
printf '%s' "$OUT" > "$T/good.json"
check "--json parses (python3 -m json.tool)" sh -c 'python3 -m json.tool "$0" >/dev/null' "$T/good.json"
python3 - "$T/good.json" "$BID" "$ID" <<'PY' && ok "--json: valid true, id, case, counts, checks" || fail "--json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["valid"] is True
b = d["bundles"][0]
assert b["valid"] is True and b["bundle_id"] == sys.argv[2] and b["appliance_id"] == sys.argv[3]
assert b["case"] == "C-1" and b["reads"]["count"] == 20 and b["hold"]["purpose"] == "criminal-investigation"
assert b["reads"]["first_captured_ms"] <= b["reads"]["last_captured_ms"]
assert all(c["status"] == "pass" for c in b["checks"].values()), b["checks"]
assert d["log"]["valid"] is True and d["log"]["checks"]["signatures"]["status"] == "pass"
PY

# --- another box's identity -----------------------------------------------
swtpm_start "$T/tpm-b" || fail "second swtpm starts"
SEALBOX_STATE="$T/state-b" "$SB" init --operator tech9 >/dev/null || fail "init box B"
SEALBOX_STATE="$T/state-b" "$SB" identity --out "$T/other.sbxi" >/dev/null || fail "identity B"
SEALBOX_STATE="$T/state-b" "$SB" log export "$T/other.sbxl" --operator auditor9 >/dev/null ||
	fail "log export B"
export SEALBOX_TCTI=$TCTI_A
expect_exit 1 "--since of another box: INVALID" "$V" --log "$T/log2.sbxl" --since "$T/other.sbxl"
check "...the older check says it is another box's, not that it does not verify" \
	sh -c "printf '%s' \"\$0\" | grep -Eq '^  older +FAILED +the older export is another box.s: its identity is not this export.s'" "$OUT"
check "the two boxes differ" sh -c "! cmp -s '$T/box.sbxi' '$T/other.sbxi'"
expect_exit 1 "--identity of another box: INVALID" "$V" "$B" --identity "$T/other.sbxi"
check "the pin check fails" sh -c "printf '%s' \"\$0\" | grep -Eq '^  FAILED +pin '" "$OUT"
check "the verdict is INVALID" sh -c "printf '%s' \"\$0\" | grep -q '^INVALID: '" "$OUT"
expect_exit 1 "--log with another box's identity: INVALID" "$V" --log "$T/log2.sbxl" \
	--identity "$T/other.sbxi"

# --- flipped bytes --------------------------------------------------------
tampered() {   # description, file, expected failing check (or ""), options...
	local d=$1 f=$2 want=$3; shift 3
	expect_exit 1 "$d: INVALID" "$V" "$f" "$@"
	if [ -n "$want" ]; then
		printf '%s\n' "$OUT" | grep -Eq "^  FAILED +$want " && ok "$d: check $want FAILED" ||
			fail "$d: check $want FAILED (got: $(printf '%s' "$OUT" | grep -E '^  FAILED' | head -n 3))"
	fi
}
mkdir -p "$T/bad" "$T/cus" "$T/bad-id"
cp "$B" "$T/cus/$BID.sbx"
mutate <<EOF
$T/bad/m.sbx $B tar:manifest.json:s:"tech1
$T/bad-id/{id}.sbx $B tar:manifest.json:s:"tech1
$T/bad/m0.sbx $B tar:manifest.json:0
$T/bad/s.sbx $B tar:manifest.sig:-5
$T/bad/p.sbx $B tar:payload.enc:100
$T/bad/pl.sbx $B tar:payload.enc:-1
$T/bad/i.sbx $B tar:identity.sbxi:sign-end
$T/bad/i2.sbx $B tar:identity.sbxi:200
$T/sweep $B sweep
$T/cus/head.custody $C head:50
$T/cus/record.custody $C record:40
$T/cus/sig.custody $C raw:-3
$T/log-mod.sbxl $T/log2.sbxl raw:$(( $(stat -c %s "$T/log2.sbxl") / 2 ))
$T/log1-mod.sbxl $T/log1.sbxl raw:300
EOF
MB=$(ls "$T"/bad-id/*.sbx)
# "tech1" -> "tech0": the manifest stays canonical JSON; only the signature
# can catch it.
tampered "a flipped byte in manifest.json" "$T/bad/m.sbx" signature "${PIN[@]}"
tampered "a flipped byte in manifest.json, file named after its new id" "$MB" signature
check "...and the name check passes for it" sh -c "printf '%s' \"\$0\" | grep -Eq '^  ok +name '" "$OUT"
tampered "a flipped first byte of manifest.json" "$T/bad/m0.sbx" "" "${PIN[@]}"
tampered "a flipped byte in manifest.sig" "$T/bad/s.sbx" signature "${PIN[@]}"
tampered "a flipped byte in payload.enc" "$T/bad/p.sbx" ciphertext "${PIN[@]}"
tampered "a flipped last byte of payload.enc" "$T/bad/pl.sbx" ciphertext
tampered "a flipped byte in identity.sbxi (the signing key)" "$T/bad/i.sbx" "" "${PIN[@]}"
tampered "a flipped byte in identity.sbxi, without a pin" "$T/bad/i.sbx" ""
tampered "a flipped byte in identity.sbxi (offset 200)" "$T/bad/i2.sbx" "" "${PIN[@]}"
for f in m s p i; do cp "$C" "$T/bad/$f.custody"; done

# A sample of single-bit flips across the whole file (every tar header, the
# manifest, the signature, the identity, the payload, the end padding):
# every one rejected.
swept=0 rejected=0
for f in "$T"/sweep/*.sbx; do
	swept=$((swept + 1))
	"$V" --quiet "$f" "${PIN[@]}" >/dev/null 2>&1
	rc=$?
	[ "$rc" -eq 1 ] && rejected=$((rejected + 1)) || echo "# flip at byte $(basename "$f" .sbx): exit $rc"
done
check "all $swept sampled bit flips rejected (exit 1): $rejected" test "$rejected" -eq "$swept" -a "$swept" -ge 30
rm -rf "$T/sweep"

# --- the custody file -------------------------------------------------------
custody() {   # description, tampered custody file
	cp "$2" "$T/cus/$BID.custody"
	tampered "custody file: $1" "$T/cus/$BID.sbx" custody "${PIN[@]}"
	rm -f "$T/cus/$BID.custody"
}
custody "the head's root changed" "$T/cus/head.custody"
custody "a record changed" "$T/cus/record.custody"
custody "the head's signature changed" "$T/cus/sig.custody"
head -c $(($(stat -c %s "$C") - 1)) "$C" > "$T/cus/$BID.custody"
tampered "custody file: truncated" "$T/cus/$BID.sbx" custody "${PIN[@]}"
{ cat "$C"; printf 'x'; } > "$T/cus/$BID.custody"
tampered "custody file: a trailing byte" "$T/cus/$BID.sbx" custody "${PIN[@]}"
cp "$C" "$T/cus/$BID.custody"
expect_exit 0 "custody file restored: VALID again" "$V" "$T/cus/$BID.sbx" "${PIN[@]}"

# --- the policy -------------------------------------------------------------
sed 's/^retention_days *= *21/retention_days = 14/' "$T/policy.conf" > "$T/other-policy.conf"
check "the other policy differs" sh -c "! cmp -s '$T/policy.conf' '$T/other-policy.conf'"
tampered "a wrong --policy" "$B" policy --policy "$T/other-policy.conf"

# --- the EK certificate chain -----------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=not-the-tpm-maker \
	-days 2 -keyout "$T/other-ca.key" -out "$T/other-ca.pem" 2>/dev/null || fail "make a CA"
tampered "--ek-ca of another CA" "$B" ek-chain --ek-ca "$T/other-ca.pem"
check "...the identity itself still passes" sh -c "printf '%s' \"\$0\" | grep -Eq '^  ok +identity '" "$OUT"

# --- the log export ---------------------------------------------------------
LEN=$(stat -c %s "$T/log2.sbxl")
head -c $((LEN - 100)) "$T/log2.sbxl" > "$T/trunc.sbxl"
expect_exit 1 "--log truncated: INVALID" "$V" "$B" --log "$T/trunc.sbxl" --since "$T/log1.sbxl"
check "the log-* checks did not run on an unverified export" \
	sh -c "printf '%s' \"\$0\" | grep -Eq '^  not run +log-ingest '" "$OUT"
expect_exit 1 "--log modified: INVALID" "$V" "$B" --log "$T/log-mod.sbxl" --since "$T/log1.sbxl"
expect_exit 1 "--since modified: INVALID" "$V" --log "$T/log2.sbxl" --since "$T/log1-mod.sbxl"
expect_exit 1 "--log older than --since: INVALID" "$V" --log "$T/log1.sbxl" --since "$T/log2.sbxl"
check "...and the report says this export is older, perhaps given the wrong way round" \
	sh -c "printf '%s' \"\$0\" | grep -q 'this export is a prefix of the older one, so it is older than the export verified before; if the two were given the wrong way round'" "$OUT"
# An export older than the bundle cannot hold its records: that is a
# matter of which files the auditor fetched, not evidence of anything, so
# the log-* checks say so and do not run.
expect_exit 0 "a log export from before the bundle: the log-* checks do not run" \
	"$V" "$B" --log "$T/log0.sbxl"
check "log-ingest not run: the bundle was sealed after this export" \
	sh -c "printf '%s' \"\$0\" | grep -Eq '^  not run +log-ingest +the bundle was sealed after this export'" "$OUT"
check "log-head not run: the custody file is newer than the export" \
	sh -c "printf '%s' \"\$0\" | grep -Eq '^  not run +log-head +the custody file is newer than the log export'" "$OUT"
# The order an auditor meets in practice: the log exported first, the
# bundle (and so its custody file, whose head is newer: the export records
# itself) afterwards.  The bundle's ingest is in the export and is checked.
mkdir -p "$T/out-later"
"$SB" bundle export "$BID" --out "$T/out-later" >/dev/null || fail "bundle export after log2"
expect_exit 0 "a custody file exported after the log export: VALID" \
	"$V" "$T/out-later/$BID.sbx" "${PIN[@]}" --log "$T/log2.sbxl"
check "...log-ingest passes, log-head says to fetch a newer export" sh -c "
	printf '%s' \"\$0\" | grep -Eq '^  ok +log-ingest ' &&
	printf '%s' \"\$0\" | grep -Eq '^  not run +log-head +.*verify against an export made after the custody file'" "$OUT"
check "...and the last line says VALID, and that the bundle is not tied to the export" \
	sh -c "printf '%s\n' \"\$0\" | tail -n 1 | grep -qx 'VALID: 1 bundle and the log export (1 not tied to it: custody file newer than the export)'" "$OUT"
# Files of another sealbox kind given in the wrong place.
expect_exit 1 "a log export given as BUNDLE" "$V" "$T/log2.sbxl"
check "...says it is a log export and to pass it with --log" \
	sh -c "printf '%s' \"\$0\" | grep -Eq '^  FAILED +container +this is a custody-log export, not a bundle: pass it with --log'" "$OUT"
expect_exit 1 "a custody file given as BUNDLE" "$V" "$C"
check "...says it is a custody file" sh -c "printf '%s' \"\$0\" | grep -q 'this is a custody file, not a bundle'" "$OUT"
expect_exit 1 "a bundle given as --log" "$V" --log "$B"
check "...reports no made-up box, records or times" sh -c "
	printf '%s' \"\$0\" | grep -Eq '^  format +FAILED ' &&
	! printf '%s' \"\$0\" | grep -Eq '^(appliance id|records):'" "$OUT"
expect_exit 1 "...and with --json" "$V" --log "$B" --json
check "...null, not zeros, and ekcert_chain_ok null (never checked)" sh -c "printf '%s' \"\$0\" | python3 -c '
import json, sys
l = json.load(sys.stdin)[\"log\"]
assert l[\"appliance_id\"] is None and l[\"first_time_ms\"] is None, l
assert l[\"identity\"][\"ekcert_chain_ok\"] is None, l[\"identity\"]'" "$OUT"
# The last line says which part failed.
expect_exit 1 "a bad bundle with a good log" "$V" "$T/bad/p.sbx" --log "$T/log2.sbxl"
check "...the last line names the bundle, and says the log export is valid" sh -c "
	printf '%s\n' \"\$0\" | tail -n 1 | grep -qx 'INVALID: 1 of 1 bundle invalid; the log export is valid'" "$OUT"

# --json on an invalid bundle and an invalid log
expect_exit 1 "--json on a tampered bundle" "$V" --json "$T/bad/p.sbx" "${PIN[@]}"
printf '%s' "$OUT" > "$T/bad.json"
python3 - "$T/bad.json" <<'PY' && ok "--json: valid false, ciphertext fail" || fail "--json on a tampered bundle"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["valid"] is False and d["bundles"][0]["valid"] is False
assert d["bundles"][0]["checks"]["ciphertext"]["status"] == "fail"
assert d["bundles"][0]["checks"]["container"]["status"] == "pass"
PY
expect_exit 1 "--json with a truncated log" "$V" --json --log "$T/trunc.sbxl"
printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["valid"] is False and d["log"]["valid"] is False' &&
	ok "--json: log valid false" || fail "--json: log valid false"
expect_exit 1 "good and tampered bundles together: INVALID" "$V" "$B" "$T/bad/p.sbx" "${PIN[@]}"
check "the good one is still VALID in the report" sh -c "printf '%s' \"\$0\" | grep -q '^VALID: $B'" "$OUT"

# --- usage and I/O errors ---------------------------------------------------
expect_exit 2 "a missing bundle" "$V" "$T/none.sbx"
expect_exit 2 "a missing bundle among good ones" "$V" "$B" "$T/none.sbx"
expect_exit 2 "a missing --identity file" "$V" "$B" --identity "$T/none.sbxi"
expect_exit 2 "an --identity file that is not one" "$V" "$B" --identity "$T/policy.conf"
expect_exit 2 "a missing --policy file" "$V" "$B" --policy "$T/none.conf"
expect_exit 2 "a missing --ek-ca file" "$V" "$B" --ek-ca "$T/none.pem"
expect_exit 2 "a missing --log file" "$V" "$B" --log "$T/none.sbxl"
expect_exit 2 "a missing --custody file" "$V" "$B" --custody "$T/none.custody"
expect_exit 2 "a directory as bundle" "$V" "$T"
expect_exit 2 "a bad option" "$V" --frobnicate "$B"
check "the error names the option" sh -c "printf '%s' \"\$0\" | grep -q frobnicate" "$ERR"
expect_exit 2 "an option without its argument" "$V" "$B" --identity
expect_exit 2 "nothing to verify" "$V"
expect_exit 2 "--since without --log" "$V" "$B" --since "$T/log1.sbxl"
expect_exit 2 "--custody with two bundles" "$V" "$B" "$B" --custody "$C"
expect_exit 2 "an option given twice" "$V" "$B" --policy "$T/policy.conf" --policy "$T/policy.conf"
expect_exit 0 "--help" "$V" --help
check "--help shows the usage" sh -c "printf '%s' \"\$0\" | grep -q '^usage: sealbox-verify'" "$OUT"
expect_exit 0 "--version" "$V" --version

# --- a custody file that is newer than the export only in appearance -------------
# (found by a security review) Only a custody head that is truly newer may
# make the log-* checks "not run"; a pruned custody file or a rolled-back
# log must still fail.
#
# A custody file without its ingest record: 'bundle verify --decrypt' logs a
# view of the bundle, so the custody file holds the ingest and the view;
# dropping the ingest keeps a file that verifies record by record.
"$SB" bundle verify "$BID" --decrypt --operator auditor1 >/dev/null || fail "bundle verify --decrypt"
mkdir -p "$T/pruned"
"$SB" bundle export "$BID" --out "$T/pruned" >/dev/null || fail "bundle export with the view"
python3 - "$T/pruned/$BID.custody" <<'PY' || fail "prune the custody file"
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack(">I", b[37:41])[0]
assert n >= 2, n
off, recs = 41, []
for _ in range(n):
    start = off
    (l,) = struct.unpack(">I", b[off:off + 4]); off += 4 + l + 8
    off += 1 + 32 * b[off]
    recs.append(b[start:off])
assert b"ingest" in recs[0], "the first record is the ingest"
open(sys.argv[1], "wb").write(b[:37] + struct.pack(">I", n - 1) + b"".join(recs[1:]) + b[off:])
PY
expect_exit 1 "a custody file without its ingest record, against an export from before the bundle" \
	"$V" "$T/pruned/$BID.sbx" --log "$T/log0.sbxl"
check "...log-ingest FAILED: nothing in the verified custody file places the sealing after the export" \
	sh -c "printf '%s' \"\$0\" | grep -Eq '^  FAILED +log-ingest '" "$OUT"
expect_exit 0 "...while the unedited custody file against the same export is VALID (not tied)" \
	"$V" "$T/out-later/$BID.sbx" --log "$T/log0.sbxl"

# A rolled-back log: a bundle sealed and exported (its custody head covering
# many records), then the database restored to an older copy, the alarm
# cleared by the auditor (the counter moves on) and the log exported.  The
# custody head covers more records than that export, but the export's last
# head is later: the history the custody file shows was lost.
cp "$T/state/sealbox.db" "$T/older.db"
"$SB" ingest C-1 "$T/in/reads.csv" --operator tech1 --source again >/dev/null || fail "ingest 2"
BN=$(sqlite3 "$T/state/sealbox.db" "SELECT id FROM bundles ORDER BY record_seq DESC LIMIT 1")
for _ in 1 2 3 4 5 6; do "$SB" log checkpoint --operator auditor1 >/dev/null || fail "checkpoint"; done
mkdir -p "$T/lost"
"$SB" bundle export "$BN" --out "$T/lost" >/dev/null || fail "bundle export before the restore"
cp "$T/older.db" "$T/state/sealbox.db"
"$SB" log checkpoint --operator auditor1 >/dev/null 2>&1   # meets the alarm (exit 8)
"$SB" alarm clear --operator auditor1 --reason "test: restored on purpose" >/dev/null ||
	fail "alarm clear"
"$SB" log export "$T/log-after.sbxl" --operator auditor1 >/dev/null || fail "log export after"
expect_exit 1 "a custody head covering more records than a later export of a rolled-back log: INVALID" \
	"$V" "$T/lost/$BN.sbx" --log "$T/log-after.sbxl"
check "...log-head FAILED: rolled back or forked" \
	sh -c "printf '%s' \"\$0\" | grep -Eq '^  FAILED +log-head +.*the log was rolled back or forked'" "$OUT"

# The recipient program links no appliance library.
check "sealbox-verify links no tpm2-tss, SQLite or libgpiod" \
	sh -c "! ldd '$V' | grep -Eq 'tss2|sqlite|gpiod'"

done_testing
