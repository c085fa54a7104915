#!/usr/bin/env bash
# docs/VERIFY.md section 5 promises that an auditor can check a bundle with
# stock openssl, bsdtar and coreutils.  This runs exactly the ```sh blocks of
# that document, in order, under `sh -eu`, on a real bundle sealed on swtpm:
# they must succeed, and must fail on every tampered copy.
. "$(dirname "$0")/../lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"

SB="$SBX_BIN/sealbox"
if ! "$SB" ingest --help >/dev/null 2>&1 || ! "$SB" bundle --help >/dev/null 2>&1; then
	echo "ok 1 # SKIP 'sealbox ingest' / 'sealbox bundle' are not available yet"
	exit 0
fi
for tool in openssl bsdtar sha256sum dd od cmp; do
	command -v "$tool" >/dev/null || { fail "$tool is installed"; done_testing; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-recipe.XXXXXX")
trap 'swtpm_stop "$T/tpm" >/dev/null 2>&1; rm -rf "$T"' EXIT
unset SEALBOX_GPIO

# The recipe, verbatim: every ```sh block of docs/VERIFY.md, in order.
awk '/^```sh$/ { on = 1; next } /^```/ { on = 0 } on' "$SBX_TOP/docs/VERIFY.md" > "$T/recipe.sh"
BLOCKS=$(grep -c '^```sh$' "$SBX_TOP/docs/VERIFY.md")
check "docs/VERIFY.md has the recipe's sh blocks ($BLOCKS)" test "$BLOCKS" -ge 8
check "the recipe is valid sh" sh -n "$T/recipe.sh"

swtpm_start "$T/tpm" || { fail "swtpm starts"; done_testing; exit 1; }
export SEALBOX_STATE="$T/state"
"$SB" init --operator tech1 > "$T/init.out" || fail "init"
ID=$(sed -n 's/^appliance id: //p' "$T/init.out")
"$SB" hold open C-1 --authority "Warrant 2026-114" --purpose criminal-investigation \
	--operator tech1 >/dev/null || fail "hold open"
"$SBX_BIN/tests/tools/gen_reads" --out "$T/in" --count 12 --seed 3 >/dev/null || fail "gen_reads"
"$SB" ingest C-1 "$T/in/reads.csv" --operator tech1 >/dev/null || fail "ingest"
# A second event for the case, so the tree is larger than the ingest record.
"$SB" hold renew C-1 --authority "Order 77" --operator tech1 >/dev/null || fail "hold renew"
BID=$(basename "$(ls "$SEALBOX_STATE"/bundles/*.sbx | head -n 1)" .sbx)
mkdir -p "$T/out"
"$SB" bundle export "$BID" --out "$T/out" >/dev/null || fail "bundle export"
"$SB" policy show | sed 1d > "$T/policy.conf"
B="$T/out/$BID.sbx"
C="$T/out/$BID.custody"

# run_recipe NAME BUNDLE CUSTODY [VAR=VALUE...]: the recipe in a fresh
# directory, as an auditor would run it; output in $T/NAME.out.
run_recipe() {
	local name=$1 bundle=$2 custody=$3; shift 3
	mkdir -p "$T/audit-$name" "$T/tmp-$name"
	(cd "$T/audit-$name" &&
	 env PATH="$SBX_BIN:$PATH" TMPDIR="$T/tmp-$name" BUNDLE="$bundle" CUSTODY="$custody" \
	     PINNED_KEY="$T/audit-$name/sign.pem" PINNED_ID="$ID" \
	     PINNED_IDENTITY="$T/audit-$name/box.sbxi" POLICY="$T/policy.conf" "$@" \
	     sh -eu "$T/recipe.sh") > "$T/$name.out" 2>&1
}

run_recipe good "$B" "$C"
rc=$?
check "the recipe succeeds on a real bundle" test "$rc" -eq 0
[ "$rc" -eq 0 ] || sed 's/^/    # /' "$T/good.out" | tail -n 20
check "the pinned key is the box (appliance id from stock openssl)" \
	grep -q "^ok: .*sign.pem is appliance $ID" "$T/good.out"
check "openssl verified the manifest signature" grep -q '^Verified OK' "$T/good.out"
check "the bundle id was recomputed" grep -q "^ok: bundle id $BID" "$T/good.out"
check "the ciphertext hash was checked" grep -q '^ok: payload.enc SHA-256' "$T/good.out"
check "the identity and policy were checked" \
	sh -c "grep -q '^ok: identity.sbxi is the pinned' '$T/good.out' && grep -q '^ok: sealed under the policy' '$T/good.out'"
check "every custody record's inclusion proof was checked" \
	grep -q '^ok: custody record 0 is leaf [0-9]* of the signed tree' "$T/good.out"
check "the custody head's signature was checked" grep -q '^ok: custody head signed by' "$T/good.out"
check "nothing FAILED" sh -c "! grep -q FAILED '$T/good.out'"
check "the recipe leaves no scratch directory behind" test -z "$(ls -A "$T/tmp-good")"

# A renamed copy is not judged by its name (as sealbox-verify's 'name' check);
# a copy named after another bundle id is caught.
cp "$B" "$T/evidence.sbx"
run_recipe renamed "$T/evidence.sbx" "$C"
check "a bundle under another name (evidence.sbx) passes, its name not judged" \
	sh -c "test $? -eq 0 && grep -q '^ok: bundle id $BID (the file name evidence.sbx is not a bundle id' '$T/renamed.out'"
OTHER=$(printf '%064d' 0)
cp "$B" "$T/$OTHER.sbx"
run_recipe misnamed "$T/$OTHER.sbx" "$C"
check "a bundle named after another bundle id fails" \
	sh -c "test $? -ne 0 && grep -q '^FAILED: manifest.json hashes to $BID, the file is named $OTHER.sbx' '$T/misnamed.out'"
check "...and, failing, still leaves no scratch directory" test -z "$(ls -A "$T/tmp-misnamed")"

# --- tampered copies: the recipe must fail ---------------------------------
# mutate: makes tampered copies, one per line of stdin, in one python run
# (its start-up is the slow part).  Each line: OUT SRC WHERE, and OUT gets
# SRC with one bit flipped at WHERE:
#   tar:MEMBER:N     byte N of tar member MEMBER (negative: from its end)
#   tar:MEMBER:s:STR the last byte of STR's first occurrence in MEMBER
#   tar:identity.sbxi:sign-end   the last byte of the identity's signing key
#   raw:N            byte N of the file (negative: from its end)
#   head:N, record:N byte N of a custody file's tree head / first record
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

must_fail() {   # description, name, bundle, custody, [VAR=VALUE...]
	local d=$1 name=$2; shift 2
	run_recipe "$name" "$@"
	local rc=$?
	if [ "$rc" -ne 0 ] && grep -q 'FAILED\|Verification failure' "$T/$name.out"; then
		ok "the recipe fails: $d"
	else
		fail "the recipe fails: $d (exit $rc; $(tail -n 2 "$T/$name.out" | tr '\n' ' '))"
	fi
}
for d in payload sig manifest manifest2 identity head record size hsig; do mkdir -p "$T/bad/$d"; done
mutate <<EOF
$T/bad/payload/$BID.sbx $B tar:payload.enc:1000
$T/bad/sig/$BID.sbx $B tar:manifest.sig:-3
$T/bad/manifest/$BID.sbx $B tar:manifest.json:s:"tech1
$T/bad/manifest2/{id}.sbx $B tar:manifest.json:s:"tech1
$T/bad/identity/$BID.sbx $B tar:identity.sbxi:100
$T/bad/head/$BID.custody $C head:50
$T/bad/record/$BID.custody $C record:60
$T/bad/size/$BID.custody $C head:40
$T/bad/hsig/$BID.custody $C raw:-2
EOF
must_fail "a flipped byte in payload.enc" payload "$T/bad/payload/$BID.sbx" "$C"
must_fail "a flipped byte in manifest.sig" sig "$T/bad/sig/$BID.sbx" "$C"
must_fail "a flipped byte in manifest.json (file keeps its name)" manifest \
	"$T/bad/manifest/$BID.sbx" "$C"
# "tech1" -> "tech0" keeps the manifest well-formed; named after its new
# hash, only the signature can catch it.
MB=$(ls "$T"/bad/manifest2/*.sbx)
must_fail "a flipped byte in manifest.json (file named after its new id)" manifest2 "$MB" "$C"
check "...caught by the signature" grep -q 'Verification failure' "$T/manifest2.out"
must_fail "a flipped byte in identity.sbxi" identity "$T/bad/identity/$BID.sbx" "$C"
check "...caught by the manifest's identity_sha256" \
	grep -q 'FAILED: identity.sbxi is not the identity the manifest names' "$T/identity.out"
for d in head record size hsig; do cp "$B" "$T/bad/$d/"; done
must_fail "the custody head's root changed" head "$T/bad/head/$BID.sbx" "$T/bad/head/$BID.custody"
must_fail "a custody record changed" record "$T/bad/record/$BID.sbx" "$T/bad/record/$BID.custody"
must_fail "the custody head's tree size changed" size "$T/bad/size/$BID.sbx" "$T/bad/size/$BID.custody"
must_fail "the custody head's signature changed" hsig "$T/bad/hsig/$BID.sbx" "$T/bad/hsig/$BID.custody"
sed 's/^retention_days *= *21/retention_days = 14/' "$T/policy.conf" > "$T/other.conf"
must_fail "another policy" policy "$B" "$C" POLICY="$T/other.conf"
# A key that is not the box's, pinned with its own (matching) id: the
# manifest signature must fail.
openssl ecparam -name prime256v1 -genkey -noout -out "$T/forger.key" 2>/dev/null
openssl pkey -in "$T/forger.key" -pubout -out "$T/forger.pem" 2>/dev/null
FID=$(openssl pkey -pubin -in "$T/forger.pem" -outform DER | sha256sum | cut -c1-64)
mkdir -p "$T/forge"
(cd "$T/forge" && env PATH="$SBX_BIN:$PATH" BUNDLE="$B" CUSTODY="$C" PINNED_KEY="$T/forger.pem" \
	PINNED_ID="$FID" sh -eu "$T/recipe.sh") > "$T/forge.out" 2>&1
rc=$?
check "the recipe fails with a key that is not the box's (exit $rc)" \
	sh -c "[ $rc -ne 0 ] && grep -q 'Verification failure\|does not verify' '$T/forge.out'"

done_testing
