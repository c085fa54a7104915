#!/usr/bin/env bash
# Trust anchors, CRLs and recipients end to end on a real swtpm, with a test
# PKI made by the openssl command line (req, x509, ca): court and prosecutor
# roots, a court intermediate, an unknown root, and leaves for every verdict.
# The authorization matrix of issue 4 for everything recipient_usable
# decides (expired, not yet valid, revoked, wrong role, unknown CA,
# self-signed, federal-marked): each refused with its reason, the refusal
# logged, nothing changed - when adding, and again later (the box's clock
# moved with SEALBOX_TEST_NOW_MS, a CRL loaded, trust.conf extended), as
# `recipient show/list` and, when the release command is built, `release`.
. "$(dirname "$0")/../lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-recipients.XXXXXX")
SIMPID=""
cleanup() {
	[ -n "$SIMPID" ] && kill "$SIMPID" 2>/dev/null
	swtpm_stop "$T/tpm" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
swtpm_start "$T/tpm" || { fail "swtpm starts"; done_testing; exit 1; }
SB="$SBX_BIN/sealbox"
S="$T/state"
P="$T/pki"
export SEALBOX_STATE="$S"
unset SEALBOX_GPIO SEALBOX_TEST_NOW_MS
mkdir -p "$P"

# --- the test PKI -----------------------------------------------------------
cat >"$P/openssl.cnf" <<'EOF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca ]
default_ca = ca_any
[ ca_any ]
dir = $ENV::CADIR
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 365
default_crl_days = 7
policy = pol_any
unique_subject = no
email_in_dn = yes
[ pol_any ]
commonName = supplied
[ v3_root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_int ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_ec ]
keyUsage = critical,keyAgreement
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_rsa ]
keyUsage = critical,keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_sigonly ]
keyUsage = critical,digitalSignature
authorityKeyIdentifier = keyid:always
[ v3_fedpol ]
keyUsage = critical,keyAgreement
certificatePolicies = 2.16.840.1.101.3.2.1.3.13
authorityKeyIdentifier = keyid:always
[ v3_fedmail ]
keyUsage = critical,keyAgreement
subjectAltName = email:agent.doe@ice.dhs.gov
authorityKeyIdentifier = keyid:always
[ v3_self ]
keyUsage = critical,keyAgreement
subjectKeyIdentifier = hash
EOF
CNF="$P/openssl.cnf"
export CADIR="$P"    # the config names $ENV::CADIR; each `openssl ca` sets its own
EC=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)

cadir() {   # NAME: an `openssl ca` directory
	mkdir -p "$P/$1/new" && : >"$P/$1/index.txt" && echo 1000 >"$P/$1/serial" &&
		echo 01 >"$P/$1/crlnumber"
}
root() {    # NAME SUBJECT [keyopts...]: a self-signed root CA
	local n=$1 subj=$2; shift 2
	openssl req -x509 -config "$CNF" -extensions v3_root "$@" -nodes -keyout "$P/$n.key" \
		-out "$P/$n.pem" -days 3650 -subj "$subj" 2>/dev/null && cadir "$n"
}
issue() {   # CA NAME SUBJECT EXT [ca options...] (keys: EC P-256 unless $KEYOPTS)
	local ca=$1 n=$2 subj=$3 ext=$4; shift 4
	openssl req -new -config "$CNF" ${KEYOPTS:-"${EC[@]}"} -nodes -keyout "$P/$n.key" \
		-out "$P/$n.csr" -subj "$subj" 2>/dev/null &&
	CADIR="$P/$ca" openssl ca -batch -config "$CNF" -cert "$P/$ca.pem" -keyfile "$P/$ca.key" \
		-in "$P/$n.csr" -out "$P/$n.pem" -extensions "$ext" -preserveDN -notext "$@" \
		>/dev/null 2>&1
}
d() { date -u -d "$1" +%Y%m%d%H%M%SZ; }

pki_ok=1
root court-root "/O=Colorado Judicial Branch/CN=Test Court Root CA" "${EC[@]}" || pki_ok=0
root pros-root "/O=Denver District Attorney/CN=Test Prosecutor Root CA" -newkey ec -pkeyopt ec_paramgen_curve:P-384 || pki_ok=0
root unknown-root "/CN=Unknown Root CA" "${EC[@]}" || pki_ok=0
root fed-root "/O=U.S. Government/OU=FPKI/CN=Federal Test Root" "${EC[@]}" || pki_ok=0
issue court-root court-int "/O=Colorado Judicial Branch/CN=Test Court Issuing CA" v3_int || pki_ok=0
cadir court-int
issue court-int clerk "/O=Denver County Court/CN=Clerk Alvarez" v3_ec || pki_ok=0
issue court-int clerk2 "/O=Denver County Court/CN=Clerk Brandt" v3_ec || pki_ok=0
issue court-int short "/O=Denver County Court/CN=Clerk Short" v3_ec \
	-startdate "$(d '-1 hour')" -enddate "$(d '+1 day')" || pki_ok=0
issue court-int revoked "/O=Denver County Court/CN=Clerk Revoked" v3_ec || pki_ok=0
issue court-int expired "/O=Denver County Court/CN=Clerk Expired" v3_ec \
	-startdate "$(d '-400 days')" -enddate "$(d '-1 day')" || pki_ok=0
issue court-int notyet "/O=Denver County Court/CN=Clerk Later" v3_ec \
	-startdate "$(d '+1 day')" -enddate "$(d '+400 days')" || pki_ok=0
issue court-int sigonly "/O=Denver County Court/CN=Clerk Signer" v3_sigonly || pki_ok=0
issue court-int fedpol "/O=Denver County Court/CN=Clerk Bridged" v3_fedpol || pki_ok=0
issue court-int fedorg "/O=U.S. Government/CN=Agent Org" v3_ec || pki_ok=0
issue court-int fedmail "/O=Denver County Court/CN=Agent Mail" v3_fedmail || pki_ok=0
issue unknown-root stranger "/CN=Stranger" v3_ec || pki_ok=0
KEYOPTS="-newkey rsa:2048" issue court-int rsa2048 "/O=Denver County Court/CN=Clerk Weak" v3_rsa || pki_ok=0
KEYOPTS="-newkey rsa:3072" issue pros-root dda "/O=Denver District Attorney/CN=DDA Okafor" v3_rsa || pki_ok=0
openssl req -x509 -config "$CNF" -extensions v3_self "${EC[@]}" -nodes -keyout "$P/self.key" \
	-out "$P/self.pem" -days 365 -subj "/CN=Self Made" 2>/dev/null || pki_ok=0
check "the test PKI is made with the openssl command line" test "$pki_ok" = 1
# Recipient files: the leaf, then its intermediate (with openssl's text for
# one of them, as `openssl ca` writes it without -notext).
for n in clerk clerk2 short revoked expired notyet sigonly fedpol fedorg fedmail rsa2048; do
	cat "$P/$n.pem" "$P/court-int.pem" >"$P/$n-chain.pem"
done
openssl x509 -in "$P/clerk.pem" -text >"$P/clerk-text.pem"
cat "$P/court-int.pem" >>"$P/clerk-text.pem"

# --- helpers --------------------------------------------------------------
# What the refusals must not change: the trust and recipient tables.
snap() {
	sqlite3 "$S/sealbox.db" "SELECT role, hex(cert_sha256) FROM trust_anchors ORDER BY 1, 2;
		SELECT hex(issuer_key), hex(crl_sha256) FROM crls ORDER BY 1;
		SELECT name, role, hex(cert_sha256), attestation FROM recipients ORDER BY 1;" | sha256sum
}
# The system python starts in a tenth of the time of a version-manager shim.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
# denials EVENT: how many refusals of EVENT the log's index holds.
denials() {
	sqlite3 "$S/sealbox.db" "SELECT count(*) FROM records WHERE event = '$1' AND outcome = 'denied'"
}
# last_reason EVENT: the newest refusal of EVENT as `log show` prints it
# (decoded from the canonical record).
last_reason() {
	"$SB" log show | awk -v ev="$1" '$3 == ev && $4 == "denied"' | tail -n 1
}
# refused CODE EVENT WORD DESCRIPTION command...: exits CODE, says WORD, the
# refusal is logged with WORD in its reason, the tables did not change.
refused() {
	local code=$1 ev=$2 word=$3 desc=$4; shift 4
	local before n0 n1 reason
	before=$(snap)
	n0=$(denials "$ev")
	expect_exit "$code" "$desc: refused (exit $code)" "$@"
	case "$ERR" in *"$word"*) ok "$desc: the error says '$word'";;
	               *) fail "$desc: the error says '$word' (got: $ERR)";; esac
	n1=$(denials "$ev")
	reason=$(last_reason "$ev")
	check "$desc: the refusal is logged" test "$n1" -eq $((n0 + 1))
	case "$reason" in *"$word"*) ok "$desc: the logged reason says '$word'";;
	                  *) fail "$desc: the logged reason says '$word' (got: $reason)";; esac
	check "$desc: nothing changed" test "$(snap)" = "$before"
}
field() { $PY -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print("" if v is None else (str(v).lower() if isinstance(v, bool) else v))' "$1"; }
# verdict_is NAME VERDICT WORD [NOW_MS]: `recipient show --json` (at the
# box's clock NOW_MS) gives VERDICT, usable only for "ok", WORD in the reason.
verdict_is() {
	local j
	if [ -n "${4:-}" ]; then
		j=$(SEALBOX_TEST_NOW_MS=$4 "$SB" recipient show "$1" --json)
	else
		j=$("$SB" recipient show "$1" --json)
	fi
	printf '%s' "$j" | $PY -c '
import json, sys
d = json.load(sys.stdin)
want, word = sys.argv[1], sys.argv[2]
ok = d["verdict"] == want and d["usable"] == (want == "ok") and word in (d["reason"] or "")
sys.exit(0 if ok else 1)' "$2" "$3"
}
NOW_MS=$(( $(date +%s) * 1000 ))
DAY_MS=86400000

# --- provisioning ----------------------------------------------------------
expect_exit 0 "init provisions the box" "$SB" init --operator installer
expect_exit 0 "trust list on a fresh box" "$SB" trust list
case "$OUT" in *"no trust anchors"*) ok "a fresh box has no anchors";; *) fail "a fresh box has no anchors: $OUT";; esac

# --- usage errors (not logged: nothing was attempted) ------------------------
expect_exit 2 "trust add without --operator" "$SB" trust add --role court "$P/court-root.pem"
expect_exit 2 "trust add without --role" "$SB" trust add "$P/court-root.pem" --operator sec1
expect_exit 2 "recipient add with a malformed name" \
	"$SB" recipient add '../x' "$P/clerk-chain.pem" --role court --attestation A-1 --operator sec1
expect_exit 2 "recipient add without a file" "$SB" recipient add clerk --role court --operator sec1
expect_exit 2 "trust add without a TPM" env -u SEALBOX_TCTI "$SB" trust add --role court "$P/court-root.pem" --operator sec1

# --- trust anchors ----------------------------------------------------------
refused 3 trust.add "no role 'federal'" "an anchor for a federal role" \
	"$SB" trust add --role federal "$P/fed-root.pem" --operator sec1
refused 3 trust.add "federal marking" "a CA with O=U.S. Government as court anchor" \
	"$SB" trust add --role court "$P/fed-root.pem" --operator sec1
refused 3 trust.add "self-signed root" "an intermediate as anchor" \
	"$SB" trust add --role court "$P/court-int.pem" --operator sec1
refused 3 trust.add "not a CA" "a recipient certificate as anchor" \
	"$SB" trust add --role court "$P/self.pem" --operator sec1
refused 2 trust.add "holds 2 certificates" "a file with two certificates as anchor" \
	"$SB" trust add --role court "$P/clerk-chain.pem" --operator sec1
printf 'garbage\n' >"$P/garbage.pem"
refused 2 trust.add "$P/garbage.pem" "a file without a certificate" \
	"$SB" trust add --role court "$P/garbage.pem" --operator sec1
refused 2 trust.add "not a regular file" "a directory as CA file" \
	"$SB" trust add --role court "$P" --operator sec1
refused 7 trust.add "$P/missing.pem" "a missing CA file" \
	"$SB" trust add --role court "$P/missing.pem" --operator sec1
expect_exit 0 "the court root becomes a court anchor" \
	"$SB" trust add --role court "$P/court-root.pem" --operator sec1
case "$OUT" in *"Test Court Root CA"*) ok "the output names the anchor";; *) fail "the output names the anchor: $OUT";; esac
openssl x509 -in "$P/pros-root.pem" -outform DER -out "$P/pros-root.der"
expect_exit 0 "the prosecutor root (DER) becomes a prosecutor anchor" \
	"$SB" trust add --role prosecutor "$P/pros-root.der" --operator sec1 --json
ROOTFP=$(openssl x509 -in "$P/pros-root.pem" -outform DER | sha256sum | cut -d' ' -f1)
check "the anchor's fingerprint is the certificate's SHA-256 (stock openssl)" \
	test "$(printf '%s' "$OUT" | field cert_sha256)" = "$ROOTFP"
refused 5 trust.add "already a court trust anchor" "the same anchor again" \
	"$SB" trust add --role court "$P/court-root.pem" --operator sec1
expect_exit 0 "trust list --json" "$SB" trust list --json
printf '%s' "$OUT" >"$T/trust.json"
check "trust list shows two anchors and the built-in federal markers" $PY - "$T/trust.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
roles = sorted(a["role"] for a in d["anchors"])
m = d["federal_markers"]
sys.exit(0 if roles == ["court", "prosecutor"] and "dhs.gov" in m["domains"]
         and "2.16.840.1.101.3.2.1" in m["policy_arcs"] and d["require_crl"] is False
         and d["trust_conf_sha256"] is None else 1)
PY

# --- recipients: the matrix when adding ---------------------------------------
add() { "$SB" recipient add "$@" --attestation "CRS-24-74-105 attestation 2026-17" --operator sec1; }
expect_exit 0 "a court clerk with an EC P-256 certificate is added" add clerk "$P/clerk-text.pem" --role court
case "$OUT" in *"no CRL loaded for issuer"*) ok "adding reports that no CRL is loaded";; *) fail "adding reports that no CRL is loaded: $OUT";; esac
expect_exit 0 "a prosecutor with an RSA-3072 certificate is added" add dda "$P/dda.pem" --role prosecutor
expect_exit 0 "a second clerk is added" add clerk2 "$P/clerk2-chain.pem" --role court
expect_exit 0 "a clerk whose certificate expires tomorrow is added" add short "$P/short-chain.pem" --role court
expect_exit 0 "a clerk to be revoked later is added" add revoked "$P/revoked-chain.pem" --role court

refused 3 recipient.add "expired on" "expired certificate" add x1 "$P/expired-chain.pem" --role court
refused 3 recipient.add "not valid before" "not yet valid certificate" add x2 "$P/notyet-chain.pem" --role court
refused 3 recipient.add "chains to a court trust anchor, not to a prosecutor" \
	"wrong role (court certificate as prosecutor)" add x3 "$P/clerk2-chain.pem" --role prosecutor
refused 3 recipient.add "does not chain to any trust anchor" "unknown CA" add x4 "$P/stranger.pem" --role court
refused 3 recipient.add "does not chain to any trust anchor" "intermediate missing from the file" \
	add x5 "$P/clerk2.pem" --role court
refused 3 recipient.add "self-signed" "self-signed certificate" add x6 "$P/self.pem" --role court
refused 3 recipient.add "2.16.840.1.101.3.2.1.3.13" "federal by certificate policy OID" \
	add x7 "$P/fedpol-chain.pem" --role court
refused 3 recipient.add "U.S. Government" "federal by O=U.S. Government" add x8 "$P/fedorg-chain.pem" --role court
refused 3 recipient.add "ice.dhs.gov" "federal by email domain" add x9 "$P/fedmail-chain.pem" --role court
refused 3 recipient.add "keyAgreement" "keyUsage digitalSignature only" add x10 "$P/sigonly-chain.pem" --role court
refused 3 recipient.add "2048 bits" "RSA-2048" add x11 "$P/rsa2048-chain.pem" --role court
refused 3 recipient.add "no role 'federal'" "a federal role" add x12 "$P/clerk2-chain.pem" --role federal
refused 3 recipient.add "attestation reference is required" "no attestation" \
	"$SB" recipient add x13 "$P/clerk2-chain.pem" --role court --operator sec1
refused 5 recipient.add "already exists" "a name taken" add clerk "$P/clerk2-chain.pem" --role court
refused 5 recipient.add "already registered as recipient 'clerk2'" "a certificate taken" \
	add x14 "$P/clerk2-chain.pem" --role court
head -c 300 "$P/clerk.pem" >"$P/cut.pem"
refused 2 recipient.add "PEM block is malformed" "a truncated PEM file" add x15 "$P/cut.pem" --role court
cat "$P/clerk.pem" "$P/clerk.key" >"$P/withkey.pem"
refused 2 recipient.add "PRIVATE KEY" "a certificate file holding a private key" add x16 "$P/withkey.pem" --role court

expect_exit 0 "recipient list --json" "$SB" recipient list --json
printf '%s' "$OUT" >"$T/list.json"
check "five recipients, all usable, with fingerprints and keys" $PY - "$T/list.json" "$P" <<'PY'
import json, subprocess, sys
d = json.load(open(sys.argv[1]))
names = [r["name"] for r in d]
fp = subprocess.run(["sh", "-c", "openssl x509 -in %s/clerk.pem -outform DER | sha256sum" % sys.argv[2]],
                    capture_output=True, text=True).stdout.split()[0]
clerk = [r for r in d if r["name"] == "clerk"][0]
dda = [r for r in d if r["name"] == "dda"][0]
ok = (names == ["clerk", "clerk2", "dda", "revoked", "short"] and all(r["usable"] for r in d)
      and clerk["cert_sha256"] == fp and clerk["key"] == "ECDH P-256" and dda["key"] == "RSA-OAEP"
      and "Test Court Root CA" in clerk["anchor"] and "no CRL" in (clerk["notes"] or "")
      and clerk["attestation"].startswith("CRS-24-74-105"))
sys.exit(0 if ok else 1)
PY

# --- CRLs -----------------------------------------------------------------
CADIR="$P/court-int" openssl ca -config "$CNF" -gencrl -cert "$P/court-int.pem" \
	-keyfile "$P/court-int.key" -out "$P/crl1.pem" 2>/dev/null
CADIR="$P/court-int" openssl ca -config "$CNF" -revoke "$P/revoked.pem" -cert "$P/court-int.pem" \
	-keyfile "$P/court-int.key" 2>/dev/null
CADIR="$P/court-int" openssl ca -config "$CNF" -gencrl -cert "$P/court-int.pem" \
	-keyfile "$P/court-int.key" -out "$P/crl2.pem" 2>/dev/null
CADIR="$P/unknown-root" openssl ca -config "$CNF" -gencrl -cert "$P/unknown-root.pem" \
	-keyfile "$P/unknown-root.key" -out "$P/crl-unknown.pem" 2>/dev/null
CADIR="$P/court-root" openssl ca -config "$CNF" -gencrl -cert "$P/court-root.pem" \
	-keyfile "$P/court-root.key" -out "$P/crl-root.pem" 2>/dev/null
cat "$P/crl1.pem" "$P/court-int.pem" >"$P/crl1-with-issuer.pem"
cat "$P/crl2.pem" >"$P/crl2-alone.pem"

refused 3 trust.crl "not signed by a trust anchor" "a CRL from an unknown CA" \
	"$SB" trust crl "$P/crl-unknown.pem" --operator sec1
expect_exit 0 "the intermediate's first CRL loads (its issuer appended)" \
	"$SB" trust crl "$P/crl1-with-issuer.pem" --operator sec1
expect_exit 0 "the root's CRL loads" "$SB" trust crl "$P/crl-root.pem" --operator sec1
refused 5 trust.crl "already loaded" "the same CRL again" \
	"$SB" trust crl "$P/crl1-with-issuer.pem" --operator sec1
check "before the newer CRL, the clerk to be revoked is usable" verdict_is revoked ok ""
expect_exit 0 "the newer CRL (issuer known from the recipients) replaces the first" \
	"$SB" trust crl "$P/crl2-alone.pem" --operator sec1
case "$OUT" in *replaced*) ok "the output says replaced";; *) fail "the output says replaced: $OUT";; esac
refused 3 trust.crl "not newer" "the older CRL after the newer" \
	"$SB" trust crl "$P/crl1-with-issuer.pem" --operator sec1
expect_exit 0 "trust list --json after the CRLs" "$SB" trust list --json
check "two CRLs are loaded, the intermediate's with one revocation" $PY -c '
import json, sys
d = json.load(sys.stdin)
c = {x["issuer"].split(",")[0]: x for x in d["crls"]}
sys.exit(0 if len(d["crls"]) == 2 and c["CN=Test Court Issuing CA"]["revoked"] == 1
         and c["CN=Test Court Issuing CA"]["crl_number"] == "2" else 1)' <<<"$OUT"

# --- the matrix later: what recipient_usable decides at release time --------
check "revoked after the CRL: not usable, says revoked" verdict_is revoked revoked "revoked by the CRL"
check "the other clerk is still usable, no CRL note now" verdict_is clerk ok ""
check "expired once the box's clock passes notAfter" \
	verdict_is short expired "expired on" $((NOW_MS + 2 * DAY_MS))
check "not yet valid when the box's clock is before notBefore" \
	verdict_is short not-yet-valid "not valid before" $((NOW_MS - DAY_MS))
check "the prosecutor's certificate is usable" verdict_is dda ok ""
refused 3 recipient.add "revoked" "adding a revoked certificate" add x17 "$P/revoked-chain.pem" --role court
expect_exit 0 "recipient list (text)" "$SB" recipient list
case "$OUT" in *"revoked by the CRL"*) ok "list shows the reason";; *) fail "list shows the reason: $OUT";; esac

# trust.conf: markers can be added (never removed), and apply at once.
printf '# local additions\nfederal-organization Denver County Court\n' >"$S/trust.conf"
check "an organization added to trust.conf makes the clerks federal-marked" \
	verdict_is clerk federal "Denver County Court"
expect_exit 0 "trust list shows trust.conf's hash" "$SB" trust list --json
check "trust.conf's hash is listed" test "$(printf '%s' "$OUT" | field trust_conf_sha256)" = \
	"$(sha256sum <"$S/trust.conf" | cut -d' ' -f1)"
printf 'federal-domain bad..domain\n' >"$S/trust.conf"
expect_exit 2 "a malformed trust.conf stops the checks (fails closed)" "$SB" recipient show clerk
case "$ERR" in *"trust.conf line 1"*) ok "the error names trust.conf and the line";; *) fail "the error names trust.conf and the line: $ERR";; esac
rm -f "$S/trust.conf"
check "without trust.conf the clerk is usable again" verdict_is clerk ok ""

# --- release: the same check, logged as a release refusal ----------------------
if "$SB" --help | grep -q '^  release' && [ -x "$SBX_BIN/sealbox-gpiosim" ]; then
	"$SBX_BIN/sealbox-gpiosim" serve "$T/gpio.sock" --quiet 2>>"$T/gpiosim.err" &
	SIMPID=$!
	for _ in $(seq 100); do "$SBX_BIN/sealbox-gpiosim" leds "$T/gpio.sock" >/dev/null 2>&1 && break; sleep 0.05; done
	export SEALBOX_GPIO="sim:$T/gpio.sock"
	expect_exit 0 "a hold for the release checks" "$SB" hold open C-REL --authority "Warrant 26-1" \
		--purpose criminal-investigation --operator tech1
	rel() { "$SB" release C-REL --to "$1" --purpose prosecution --authority "Order 26-2" \
		--operator tech1 --out "$T/out-$1" --timeout 2; }
	refused 3 release.deny "revoked" "release to the revoked clerk" rel revoked
	check "release to the revoked clerk wrote nothing" test ! -e "$T/out-revoked" -o -z "$(ls -A "$T/out-revoked" 2>/dev/null)"
	refused 3 release.deny "expired on" "release to the clerk whose certificate expired" \
		env SEALBOX_TEST_NOW_MS=$((NOW_MS + 2 * DAY_MS)) "$SB" release C-REL --to short \
		--purpose prosecution --authority "Order 26-2" --operator tech1 --out "$T/out-short" \
		--timeout 2
	printf 'federal-domain example-court.org\nfederal-organization Denver District Attorney\n' >"$S/trust.conf"
	refused 3 release.deny "federal marking" "release to a recipient marked federal by trust.conf" rel dda
	rm -f "$S/trust.conf"
	unset SEALBOX_GPIO
else
	ok "# skip release checks: no release command in this build"
fi

# --- remove ------------------------------------------------------------------
refused 4 recipient.remove "no recipient named 'nobody'" "removing an unknown recipient" \
	"$SB" recipient remove nobody --operator sec1
expect_exit 0 "the clerk is removed" "$SB" recipient remove clerk --operator sec1
expect_exit 4 "a removed recipient is unknown" "$SB" recipient show clerk
expect_exit 0 "the same certificate can be added again under a new name" \
	add clerk-new "$P/clerk-chain.pem" --role court

# --- the log ----------------------------------------------------------------
expect_exit 0 "log show --json" "$SB" log show --json
printf '%s' "$OUT" >"$T/log.json"
check "every change is a custody record with its details" $PY - "$T/log.json" "$ROOTFP" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))
ok = [r for r in rs if r["outcome"] == "ok"]
def ev(e): return [r["detail"] for r in ok if r["event"] == e]
ta = ev("trust.add"); ra = ev("recipient.add"); rr = ev("recipient.remove"); tc = ev("trust.crl")
good = (len(ta) == 2 and len(tc) == 3 and len(ra) == 6 and len(rr) == 1
        and any(d["cert_sha256"] == sys.argv[2] and d["role"] == "prosecutor" for d in ta)
        and all(d["attestation"].startswith("CRS-24-74-105") and len(d["cert_sha256"]) == 64
                for d in ra)
        and rr[0]["name"] == "clerk"
        and [d["replaces"] != "none" for d in tc] == [False, False, True])
if not good:
    print("# ok records: trust.add %d, trust.crl %d, recipient.add %d, recipient.remove %d"
          % (len(ta), len(tc), len(ra), len(rr)), file=sys.stderr)
sys.exit(0 if good else 1)
PY
expect_exit 0 "log verify after all of it" "$SB" log verify

done_testing
