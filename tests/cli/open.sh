#!/usr/bin/env bash
# sealbox-open end to end: bundles sealed by a real box on swtpm, releases
# made by the box's own keys (tests/tools/make_release, a test tool standing
# in for `sealbox release` so the recipient side is tested on its own),
# recipients' keys made with stock openssl.  What is checked: a good release
# opens and every output file is the ingested (or box-authenticated) bytes;
# every forgery is refused with the output directory untouched; keys as
# people keep them (encrypted PEM, PKCS#12, RSA) work.
. "$(dirname "$0")/../lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-open.XXXXXX")
trap 'swtpm_stop "$T/tpm" >/dev/null 2>&1; rm -rf "$T"' EXIT
swtpm_start "$T/tpm" || { fail "swtpm starts"; done_testing; exit 1; }
SB="$SBX_BIN/sealbox"
OPEN="$SBX_BIN/sealbox-open"
GEN="$SBX_BIN/tests/tools/gen_reads"
MKREL="$SBX_BIN/tests/tools/make_release"
S="$T/state"
export SEALBOX_STATE="$S"
# The system interpreter: a version manager's shim can cost seconds per call.
PY=$(command -v /usr/bin/python3 || command -v python3)
R="$T/rel"          # what the recipient received
K="$T/keys"
mkdir -p "$R" "$K"

# ---- the box: two bundles of one case ---------------------------------------
"$SB" init --operator tech1 >/dev/null || fail "init"
"$SB" hold open C-1 --authority W-1 --purpose criminal-investigation --operator tech1 >/dev/null ||
	fail "hold open"
"$GEN" --out "$T/ex1" --count 30 --seed 11 --format csv >/dev/null || fail "gen 1"
"$GEN" --out "$T/ex2" --count 12 --seed 12 --format jsonl >/dev/null || fail "gen 2"
ingest() { "$SB" ingest C-1 "$1" --operator tech1 --json |
	$PY -c 'import json,sys; print(json.load(sys.stdin)["bundle"])'; }
B1=$(ingest "$T/ex1/reads.csv") || fail "ingest 1"
B2=$(ingest "$T/ex2/reads.jsonl") || fail "ingest 2"
"$SB" bundle export "$B1" --out "$R" >/dev/null || fail "export 1"
"$SB" bundle export "$B2" --out "$R" >/dev/null || fail "export 2"

# ---- recipients ---------------------------------------------------------------
mkcert() {   # name, openssl genpkey args...
	local n=$1; shift
	openssl genpkey "$@" -out "$K/$n.key" 2>/dev/null &&
	openssl req -x509 -new -key "$K/$n.key" -out "$K/$n.crt" -days 30 \
		-subj "/O=Denver District Attorney/CN=$n" 2>/dev/null
}
mkcert alice -algorithm EC -pkeyopt ec_paramgen_curve:P-256 || fail "alice's key"
mkcert bob -algorithm EC -pkeyopt ec_paramgen_curve:P-256 || fail "bob's key"
mkcert carol -algorithm RSA -pkeyopt rsa_keygen_bits:3072 || fail "carol's RSA key"
printf 'correct horse battery staple\n' > "$K/pass"
printf 'wrong\n' > "$K/wrong"
openssl pkey -in "$K/alice.key" -aes256 -passout file:"$K/pass" -out "$K/alice-enc.key" 2>/dev/null ||
	fail "encrypted PEM"
openssl pkcs12 -export -inkey "$K/alice.key" -in "$K/alice.crt" -passout file:"$K/pass" \
	-out "$K/alice.p12" 2>/dev/null || fail "PKCS#12"
openssl pkcs12 -export -inkey "$K/alice.key" -in "$K/alice.crt" -passout pass: \
	-out "$K/alice-open.p12" 2>/dev/null || fail "PKCS#12 without passphrase"

# Releases: B1 to alice (with an authority full of HTML), B2 to alice.
AUTH='ORDER <7> & "quoted" <script>x</script>'
"$MKREL" "$S" "$B1" "$K/alice.crt" "$R/$B1.release" --authority "$AUTH" \
	--confirmation K7Q-4MZX --dump "$T/boxview1" || fail "make_release B1"
"$MKREL" "$S" "$B2" "$K/alice.crt" "$R/$B2.release" --dump "$T/boxview2" || fail "make_release B2"

untouched() { [ ! -e "$1" ] && ! ls -a "$(dirname "$1")" | grep -q "^\.$(basename "$1")\.open-"; }
sha() { sha256sum "$1" | cut -c1-64; }

# ---- a good release opens ------------------------------------------------------
O="$T/out1"
expect_exit 0 "alice opens B1 with her PEM key and certificate" \
	"$OPEN" "$R/$B1.sbx" --key "$K/alice.key" --cert "$K/alice.crt" --out "$O"
check "the report says OPENED" sh -c "printf '%s' \"\$1\" | grep -q '^OPENED: 1 bundle into'" _ "$OUT"
check "DIR holds reads.csv, reads.jsonl, images/, custody.html, verification.json" \
	test -f "$O/reads.csv" -a -f "$O/reads.jsonl" -a -d "$O/images" -a -f "$O/custody.html" -a -f "$O/verification.json"
check "DIR is private (0700)" test "$(stat -c %a "$O")" = 700
check "no staging directory is left" sh -c "! ls -a '$T' | grep -q '\.open-'"
check "reads.jsonl is byte for byte what the box authenticates with its own key" cmp "$O/reads.jsonl" "$T/boxview1/reads.jsonl"
check "reads.csv is byte for byte what the box authenticates" cmp "$O/reads.csv" "$T/boxview1/reads.csv"
check "reads.jsonl holds the 30 reads" test "$(wc -l < "$O/reads.jsonl")" -eq 30
nimg=0 bad=0
for f in "$T"/ex1/images/*.jpg; do
	b=$(basename "$f" .jpg)
	out="$O/images/${b%-*}.${b##*-}.jpg"      # r1-...-plate.jpg -> r1-....plate.jpg
	nimg=$((nimg + 1))
	[ -f "$out" ] && [ "$(sha "$f")" = "$(sha "$out")" ] || bad=$((bad + 1))
done
check "every image's SHA-256 equals the ingested image's ($nimg images)" test "$nimg" -eq 60 -a "$bad" -eq 0
check "images/ holds exactly those images" test "$(ls "$O/images" | wc -l)" -eq 60
check "every read id of the export is in reads.csv" sh -c "
	tail -n +2 '$T/ex1/reads.csv' | cut -d, -f1 | while read -r id; do grep -q \"^\$id,\" '$O/reads.csv' || exit 1; done"
check "verification.json parses and lists every file with its SHA-256" $PY - "$O" <<'EOF'
import hashlib, json, os, sys
d = sys.argv[1]
v = json.load(open(os.path.join(d, "verification.json")))
assert v["opened"] is True and v["layout"] == "flat"
b = v["bundles"][0]
assert b["valid"] is True
for name, c in b["checks"].items():
    assert c["status"] == "pass" or name in ("ek-chain", "pin"), (name, c)
files = b["files"]
assert len(files) == 62
for f in files:
    h = hashlib.sha256(open(os.path.join(d, f["path"]), "rb").read()).hexdigest()
    assert h == f["sha256"] and os.path.getsize(os.path.join(d, f["path"])) == f["bytes"], f
assert b["release"]["statement"]["confirmation"] == "K7Q-4MZX"
assert any(r["event"] == "release.confirm" for r in b["custody"]["records"])
assert any(r["event"] == "ingest" for r in b["custody"]["records"])
EOF
check "custody.html: no script, no external resource, a print stylesheet" sh -c "
	! grep -qi '<script' '$O/custody.html' && ! grep -qiE '(src|href)=' '$O/custody.html' &&
	grep -q '@media print' '$O/custody.html' && grep -q \"default-src 'none'\" '$O/custody.html'"
check "custody.html escapes the evidence's strings" sh -c "
	grep -qF 'ORDER &lt;7&gt; &amp; &quot;quoted&quot; &lt;script&gt;x&lt;/script&gt;' '$O/custody.html' &&
	! grep -qF '<7>' '$O/custody.html'"
check "custody.html shows the custody records, the statement and the checks" sh -c "
	grep -q 'release.confirm' '$O/custody.html' && grep -q '>ingest<' '$O/custody.html' &&
	grep -q 'K7Q-4MZX' '$O/custody.html' && grep -q '$B1' '$O/custody.html' &&
	! grep -q 'FAILED' '$O/custody.html'"
check "custody.html is well-formed (every tag closed)" $PY - "$O/custody.html" <<'EOF'
import sys
from html.parser import HTMLParser
void = {"meta", "br", "hr", "img", "link", "input"}
class P(HTMLParser):
    def __init__(s):
        super().__init__(); s.stack = []
    def handle_starttag(s, t, a):
        if t not in void: s.stack.append(t)
    def handle_endtag(s, t):
        assert s.stack and s.stack.pop() == t, t
p = P(); p.feed(open(sys.argv[1]).read()); p.close()
assert p.stack == [], p.stack
EOF
expect_exit 0 "the box itself authenticates the same bundle (bundle verify --decrypt)" \
	"$SB" bundle verify "$B1" --decrypt --operator tech2

# ---- output directory rules ---------------------------------------------------------
before=$(cd "$O" && find . -type f | sort | xargs sha256sum)
expect_exit 2 "a non-empty DIR is refused" "$OPEN" "$R/$B1.sbx" --key "$K/alice.key" --out "$O"
check "and left exactly as it was" test "$before" = "$(cd "$O" && find . -type f | sort | xargs sha256sum)"
mkdir "$T/empty"
expect_exit 0 "an existing empty DIR is used" "$OPEN" "$R/$B1.sbx" --key "$K/alice.key" --out "$T/empty"
check "...without a terminal, nothing on stderr" test -z "$ERR"
# On a terminal (script(1) gives it one) the decryption shows its progress
# on one line, erased before the report.
script -qec "'$OPEN' '$R/$B1.sbx' --key '$K/alice.key' --out '$T/tty-out'" /dev/null > "$T/tty.txt" 2>&1
check "on a terminal: opened, with a progress line while decrypting" sh -c "
	grep -q 'OPENED: 1 bundle' '$T/tty.txt' && grep -Eq 'sealbox-open: [0-9]+ of [0-9]+ MB decrypted and checked' '$T/tty.txt'"
check "...erased before the report" $PY - "$T/tty.txt" <<'EOF'
import sys
t = open(sys.argv[1], "rb").read()
last = t.rindex(b"decrypted and checked")
assert t.index(b"\r\033[K", last) < t.index(b"OPENED", last), t[last:last + 80]
EOF
check "a second open gives the same files" sh -c "cmp '$O/reads.jsonl' '$T/empty/reads.jsonl' && cmp '$O/reads.csv' '$T/empty/reads.csv'"
expect_exit 2 "a DIR whose parent does not exist is refused" \
	"$OPEN" "$R/$B1.sbx" --key "$K/alice.key" --out "$T/nope/out"

# ---- --json ---------------------------------------------------------------------------
expect_exit 0 "--json" "$OPEN" "$R/$B1.sbx" --key "$K/alice.key" --out "$T/out-json" --json
check "--json prints verification.json's document" sh -c "
	printf '%s' \"\$1\" | $PY -c 'import json,sys; d=json.load(sys.stdin); assert d[\"opened\"] and d[\"bundles\"][0][\"valid\"]'" _ "$OUT"
OPEN_JSON=$OUT
VERIFY_JSON=$("$SBX_BIN/sealbox-verify" "$R/$B1.sbx" --json) || fail "sealbox-verify --json"
# One writer serves both programs: an auditor's tool reads a bundle's
# description the same way from either.
check "verification.json describes the manifest and identity as sealbox-verify --json does" \
	$PY - "$OPEN_JSON" "$VERIFY_JSON" <<'EOF'
import json, sys
o = json.loads(sys.argv[1])["bundles"][0]
v = json.loads(sys.argv[2])["bundles"][0]
assert o["bundle_id"] == v["bundle_id"]
m = o["manifest"]
assert set(m) and all(m[k] == v[k] for k in m), [k for k in m if m.get(k) != v.get(k)]
assert m["payload"]["suite"] == "aes-256-gcm-stream-64k" and "identity_sha256" in m
oi, vi = dict(o["identity"]), v["identity"]
assert oi.pop("ek_certificates_sha256") is not None
assert set(oi) == set(vi), (set(oi) ^ set(vi))
assert all(oi[k] == vi[k] for k in oi if k not in ("checked", "ekcert_chain_ok")), oi
EOF
# The EK chain is a check of its own, as in sealbox-verify: a CA that does
# not issue the EK fails that check, not the identity's.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Other CA" \
	-days 2 -keyout "$T/other-ca.key" -out "$T/other-ca.pem" 2>/dev/null || fail "make a CA"
expect_exit 1 "--ek-ca of another CA is refused" "$OPEN" "$R/$B1.sbx" --key "$K/alice.key" \
	--out "$T/out-ekca" --ek-ca "$T/other-ca.pem" --json
check "...as a failed ek-chain check; the identity itself passes, as sealbox-verify says" \
	$PY - "$OUT" <<'EOF'
import json, sys
c = json.loads(sys.argv[1])["bundles"][0]["checks"]
assert c["ek-chain"]["status"] == "fail" and c["identity"]["status"] == "pass", c
EOF
check "...and DIR was not created" test ! -e "$T/out-ekca"
expect_exit 1 "--json on a refusal" "$OPEN" "$R/$B1.sbx" --key "$K/bob.key" --out "$T/out-json2" --json
check "--json on a refusal parses and names the failed check" sh -c "
	printf '%s' \"\$1\" | $PY -c 'import json,sys; d=json.load(sys.stdin); assert not d[\"opened\"]; assert d[\"bundles\"][0][\"checks\"][\"recipient\"][\"status\"]==\"fail\"; assert d[\"bundles\"][0][\"files\"] is None'" _ "$OUT"

# ---- refusals: nothing written ------------------------------------------------------
refused() {   # description, check that must fail, sealbox-open args...
	local d=$1 chk=$2 out="$T/refused-$__n"; shift 2
	expect_exit 1 "refused: $d" "$OPEN" "$@" --out "$out"
	check "DIR untouched: $d" untouched "$out"
	check "the report names the failed check ($chk): $d" \
		sh -c "printf '%s\n' \"\$1\" | grep -qE '^  FAILED +$chk '" _ "$OUT"
}
refused "another recipient's key" recipient "$R/$B1.sbx" --key "$K/bob.key"
expect_exit 2 "a --cert that is not the key's is a usage error" \
	"$OPEN" "$R/$B1.sbx" --key "$K/bob.key" --cert "$K/alice.crt" --out "$T/x"
check "and writes nothing" untouched "$T/x"

mkdir -p "$T/moved"
cp "$R/$B2.sbx" "$T/moved/"
cp "$R/$B1.release" "$T/moved/$B2.release"
refused "a release moved onto another bundle" release-bundle "$T/moved/$B2.sbx" --key "$K/alice.key"
$PY - "$T/moved/$B2.release" "$B2" <<'EOF'
import sys
p, bid = sys.argv[1], bytes.fromhex(sys.argv[2])
b = bytearray(open(p, "rb").read()); b[5:37] = bid; open(p, "wb").write(b)
EOF
refused "a moved release with its bundle id rewritten" statement "$T/moved/$B2.sbx" --key "$K/alice.key"

mkdir -p "$T/rewrap"
cp "$R/$B1.sbx" "$T/rewrap/"
"$MKREL" "$S" "$B1" "$K/alice.crt" "$T/rewrap/$B1.release" --rewrap || fail "make_release --rewrap"
refused "a content key re-wrapped outside the box" wrapped-key "$T/rewrap/$B1.sbx" --key "$K/alice.key"

mkdir -p "$T/cut"
cp "$R/$B1.sbx" "$T/cut/"
len=$(stat -c %s "$R/$B1.release")
for n in 0 3 40 $((len / 2)) $((len - 1)); do
	head -c "$n" "$R/$B1.release" > "$T/cut/$B1.release"
	refused "the release file cut to $n of $len bytes" release-file "$T/cut/$B1.sbx" --key "$K/alice.key"
done
{ cat "$R/$B1.release"; printf 'x'; } > "$T/cut/$B1.release"
refused "a byte appended to the release file" release-file "$T/cut/$B1.sbx" --key "$K/alice.key"
# A flipped byte in each part: statement, signature, wrapped key, certificate, custody.
offsets=$($PY - "$R/$B1.release" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
off, out = 37, []
for _ in range(5):
    n = struct.unpack(">I", b[off:off + 4])[0]
    out.append(str(off + 4 + n // 2)); off += 4 + n
print(" ".join(out))
EOF
)
names=(statement-sig statement-sig wrapped-key certificate custody)
i=0
for o in $offsets; do
	$PY -c "import sys; b=bytearray(open(sys.argv[1],'rb').read()); b[int(sys.argv[3])]^=1; open(sys.argv[2],'wb').write(b)" \
		"$R/$B1.release" "$T/cut/$B1.release" "$o"
	refused "a flipped byte in ${names[$i]} (offset $o)" "${names[$i]}" "$T/cut/$B1.sbx" --key "$K/alice.key"
	i=$((i + 1))
done

mkdir -p "$T/tamper"
cp "$R/$B1.release" "$T/tamper/"
cp "$R/$B1.sbx" "$T/tamper/"
size=$(stat -c %s "$T/tamper/$B1.sbx")
$PY -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[int(sys.argv[2])]^=1; open(p,'wb').write(b)" \
	"$T/tamper/$B1.sbx" $((size / 2))
refused "a bundle whose ciphertext was altered" ciphertext "$T/tamper/$B1.sbx" --key "$K/alice.key"

mkdir -p "$T/norel"
cp "$R/$B1.sbx" "$T/norel/"
expect_exit 2 "a bundle without its release file is an I/O error" \
	"$OPEN" "$T/norel/$B1.sbx" --key "$K/alice.key" --out "$T/norel-out"
check "and writes nothing" untouched "$T/norel-out"

# ---- several bundles ----------------------------------------------------------------
O2="$T/out-two"
expect_exit 0 "two bundles open together" "$OPEN" "$R/$B1.sbx" "$R/$B2.sbx" --key "$K/alice.key" --out "$O2"
check "one directory per bundle, one custody.html and verification.json" \
	test -f "$O2/$B1/reads.csv" -a -f "$O2/$B2/reads.jsonl" -a -f "$O2/custody.html" -a -f "$O2/verification.json"
check "each bundle's reads are the box's" sh -c "cmp '$O2/$B1/reads.jsonl' '$T/boxview1/reads.jsonl' && cmp '$O2/$B2/reads.jsonl' '$T/boxview2/reads.jsonl'"
expect_exit 1 "one good and one refused bundle: nothing at all is written" \
	"$OPEN" "$R/$B1.sbx" "$T/moved/$B2.sbx" --key "$K/alice.key" --out "$T/out-mixed"
check "the good bundle was not written either" untouched "$T/out-mixed"
expect_exit 2 "the same bundle twice is a usage error" \
	"$OPEN" "$R/$B1.sbx" "$R/$B1.sbx" --key "$K/alice.key" --out "$T/out-dup"
check "and writes nothing" untouched "$T/out-dup"

# ---- keys as people keep them -----------------------------------------------------------
expect_exit 0 "a passphrase-protected PEM key with --passphrase-file" \
	"$OPEN" "$R/$B1.sbx" --key "$K/alice-enc.key" --passphrase-file "$K/pass" --out "$T/k1"
check "same files" cmp "$O/reads.csv" "$T/k1/reads.csv"
expect_exit 2 "a wrong passphrase is refused" \
	"$OPEN" "$R/$B1.sbx" --key "$K/alice-enc.key" --passphrase-file "$K/wrong" --out "$T/k2"
check "and writes nothing" untouched "$T/k2"
expect_exit 2 "a protected key without a passphrase file and no terminal says what to do" \
	setsid -w "$OPEN" "$R/$B1.sbx" --key "$K/alice-enc.key" --out "$T/k3"
check "the message names --passphrase-file" sh -c "printf '%s' \"\$1\" | grep -q -- --passphrase-file" _ "$ERR"
# The prompt on the terminal: a pseudo-terminal from script(1), typed into
# after the prompt (a password prompt discards what was typed before it).
if command -v script >/dev/null; then
	(sleep 1; printf 'correct horse battery staple\n') |
		timeout 60 script -qec "'$OPEN' '$R/$B1.sbx' --key '$K/alice-enc.key' --out '$T/k-tty' --quiet" \
		/dev/null > "$T/tty.out" 2>&1
	check "without --passphrase-file the passphrase is asked on the terminal" \
		sh -c "grep -q 'Passphrase for' '$T/tty.out' && cmp '$O/reads.csv' '$T/k-tty/reads.csv'"
	check "and is not echoed" sh -c "! grep -q 'battery' '$T/tty.out'"
else
	fail "script(1) (util-linux) is needed for the terminal prompt test"
fi
expect_exit 0 "a PKCS#12 file with its passphrase" \
	"$OPEN" "$R/$B1.sbx" --key "$K/alice.p12" --passphrase-file "$K/pass" --out "$T/k4"
check "the PKCS#12 certificate is the one reported" sh -c "
	$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"recipient\"][\"subject\"]==\"CN=alice,O=Denver District Attorney\", d[\"recipient\"]' '$T/k4/verification.json'"
expect_exit 0 "a PKCS#12 file without a passphrase" \
	"$OPEN" "$R/$B1.sbx" --key "$K/alice-open.p12" --out "$T/k5"
expect_exit 2 "a PKCS#12 file with a wrong passphrase is refused" \
	"$OPEN" "$R/$B1.sbx" --key "$K/alice.p12" --passphrase-file "$K/wrong" --out "$T/k6"
mkdir -p "$T/rsa"
cp "$R/$B1.sbx" "$T/rsa/"
"$MKREL" "$S" "$B1" "$K/carol.crt" "$T/rsa/$B1.release" --name court-clerk --role court ||
	fail "make_release to an RSA-3072 recipient"
expect_exit 0 "an RSA-3072 recipient (RSA-OAEP) opens" \
	"$OPEN" "$T/rsa/$B1.sbx" --key "$K/carol.key" --cert "$K/carol.crt" --out "$T/k7"
check "same files" cmp "$O/reads.jsonl" "$T/k7/reads.jsonl"
expect_exit 1 "alice cannot open carol's release" \
	"$OPEN" "$T/rsa/$B1.sbx" --key "$K/alice.key" --out "$T/k8"

# ---- interrupted: never a partial DIR, never a staging directory left -----------
# The signal comes once the staging directory exists (decrypting), and once
# at once (before it).
for when in staging start; do
	"$OPEN" "$R/$B1.sbx" "$R/$B2.sbx" --key "$K/alice.key" --out "$T/int" >/dev/null 2>"$T/int.err" & P=$!
	# Not before the exec (a forked shell could still run this script's
	# traps); the polls use shell builtins only, so they keep up.
	for _ in $(seq 100000); do
		{ read -r comm < "/proc/$P/comm"; } 2>/dev/null || break
		[ "$comm" = sealbox-open ] && break
	done
	if [ "$when" = staging ]; then
		for _ in $(seq 200000); do
			compgen -G "$T/.int.open-*" >/dev/null && break
			{ read -r _ _ state _ < "/proc/$P/stat"; } 2>/dev/null || break
			[ "$state" = Z ] && break
		done
	fi
	kill -TERM "$P" 2>/dev/null
	wait "$P"; rc=$?
	if [ "$rc" -eq 0 ]; then
		check "finished before the signal ($when): complete" test -f "$T/int/verification.json"
	else
		check "interrupted ($when, exit $rc): nothing written" untouched "$T/int"
	fi
	check "no staging directory left ($when)" sh -c "! ls -a '$T' | grep -q '\.int\.open-'"
	rm -rf "$T/int"
done

# ---- a disk that fills up while the files are written ---------------------------
# The files are written by a thread of their own (item_writer_start_async);
# its failure must fail the open, name the file, and leave nothing.  The
# fault shim makes the 20th write of the process (an item file, two items
# of two bundles in) and every later one fail with ENOSPC.
faultshim_preload "$OPEN"
for mode in enospc-sticky eio; do
	rm -f "$T/hit"
	expect_exit 2 "writes fail ($mode): the open fails" env LD_PRELOAD="$PRELOAD" \
		SBX_FAULT_OP=write SBX_FAULT_K=20 SBX_FAULT_MODE="$mode" SBX_FAULT_HIT_FILE="$T/hit" \
		"$OPEN" "$R/$B1.sbx" "$R/$B2.sbx" --key "$K/alice.key" --out "$T/full"
	check "...the fault hit an item file in the staging area ($mode)" \
		grep -Eq ' write .*/\.full\.open-[^/]*/.*(reads\.(jsonl|csv)|images/)' "$T/hit"
	check "...the error names the file ($mode)" \
		sh -c "printf '%s' \"\$0\" | grep -Eq 'cannot write [^ ]*(reads|images)'" "$OUT$ERR"
	check "...nothing written, no staging directory left ($mode)" untouched "$T/full"
done

# ---- usage ---------------------------------------------------------------------------------
expect_exit 0 "--help" "$OPEN" --help
expect_exit 2 "no bundle" "$OPEN" --key "$K/alice.key" --out "$T/u1"
expect_exit 2 "no --key" "$OPEN" "$R/$B1.sbx" --out "$T/u2"
expect_exit 2 "no --out" "$OPEN" "$R/$B1.sbx" --key "$K/alice.key"
expect_exit 2 "an unknown option" "$OPEN" "$R/$B1.sbx" --key "$K/alice.key" --out "$T/u3" --bogus
expect_exit 2 "a key file that is not a key" "$OPEN" "$R/$B1.sbx" --key "$K/alice.crt" --out "$T/u4"

done_testing
