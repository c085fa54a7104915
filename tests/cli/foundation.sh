#!/usr/bin/env bash
# Issue 2 end to end through the sealbox command line, on a real swtpm:
# provisioning, identity, holds, policy, the custody log, bad input.
. "$(dirname "$0")/../lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-foundation.XXXXXX")
trap 'swtpm_stop "$T/tpm" >/dev/null 2>&1; rm -rf "$T"' EXIT
swtpm_start "$T/tpm" || { fail "swtpm starts"; done_testing; exit 1; }
SB="$SBX_BIN/sealbox"
S="$T/state"
export SEALBOX_STATE="$S"
unset SEALBOX_GPIO

# Snapshot of everything the box owns, to show a refused command changed nothing.
snap() { (cd "$S" 2>/dev/null && sqlite3 sealbox.db .dump | sha256sum; ls -la | sed 1d | awk '{print $1, $NF}' | sort) 2>/dev/null; }

# --- provisioning ---------------------------------------------------------
expect_exit 2 "init without a TPM is a usage error" env -u SEALBOX_TCTI "$SB" init --operator t.installer
case "$ERR" in *"--tcti"*) ok "the error names --tcti";; *) fail "the error names --tcti: $ERR";; esac
check "nothing created without a TPM" test ! -e "$S/sealbox.db"
expect_exit 2 "init without --operator (the provision record names who provisioned)" "$SB" init
check "...says so" sh -c "printf '%s' \"\$0\" | grep -q 'missing --operator ID'" "$ERR"
check "...and creates nothing" test ! -e "$S/sealbox.db"

printf 'not a policy\n' > "$T/bad.conf"
expect_exit 2 "init with a malformed policy file fails" "$SB" init --operator t.installer --policy "$T/bad.conf"
check "a failed init leaves no database" test ! -e "$S/sealbox.db"

expect_exit 6 "init with an unreachable TPM fails with the TPM exit code" \
	"$SB" init --operator t.installer --tcti "swtpm:path=$T/nonexistent.sock"
check "nothing created when the TPM is unreachable" test ! -e "$S/sealbox.db"

expect_exit 0 "init provisions the box" "$SB" init --operator tech1
ID=$(printf '%s\n' "$OUT" | sed -n 's/^appliance id: //p')
check "init prints a 64-hex appliance id" test "${#ID}" -eq 64

expect_exit 5 "a second init is refused" "$SB" init --operator t.installer
case "$ERR" in *"already provisioned"*) ok "refusal says already provisioned";; *) fail "refusal says already provisioned: $ERR";; esac

expect_exit 0 "identity --json" "$SB" identity --json --out "$T/identity.bin"
printf '%s' "$OUT" > "$T/identity.json"
JID=$(sed -n 's/.*"appliance_id": "\([0-9a-f]*\)".*/\1/p' "$T/identity.json")
check "identity shows the same appliance id" test "$JID" = "$ID"
check "identity file written" test -s "$T/identity.bin"
python3 - "$T/identity.json" "$T" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
open(sys.argv[2] + "/sign.pem", "w").write(d["signing_key_pem"])
for i, c in enumerate(d["ek_certificates"]):
    open(sys.argv[2] + "/ek%d.pem" % i, "w").write(c["pem"])
PY
SPKI_HASH=$(openssl pkey -pubin -in "$T/sign.pem" -outform DER | sha256sum | cut -d' ' -f1)
check "appliance id = SHA-256 of the signing key's SubjectPublicKeyInfo (stock openssl)" test "$SPKI_HASH" = "$ID"
check "the EK certificate verifies against the test CA with stock openssl" \
	openssl verify -CAfile "$SBX_TEST_EKCA" -partial_chain "$T/ek0.pem"

# --- holds ----------------------------------------------------------------
expect_exit 3 "a hold for civil immigration enforcement is refused" \
	"$SB" hold open C-1 --authority W-1 --purpose civil-immigration-enforcement --operator tech1
expect_exit 3 "a hold for an unknown purpose is refused" \
	"$SB" hold open C-1 --authority W-1 --purpose fishing --operator tech1
expect_exit 3 "a hold without an authority is refused" \
	"$SB" hold open C-1 --purpose criminal-investigation --operator tech1
expect_exit 3 "a hold longer than the policy allows is refused" \
	"$SB" hold open C-1 --authority W-1 --purpose criminal-investigation --operator tech1 --days 91
expect_exit 2 "a malformed case id is a usage error" \
	"$SB" hold open '../x' --authority W-1 --purpose criminal-investigation --operator tech1
expect_exit 2 "a missing operator is a usage error" \
	"$SB" hold open C-1 --authority W-1 --purpose criminal-investigation
expect_exit 0 "log show --json" "$SB" log show --json
DENIED=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["event"]=="hold.open" and r["outcome"]=="denied" and r["reason"]))')
check "each of the 4 refusals is logged with its reason" test "$DENIED" = 4
printf '%s' "$OUT" > "$T/refusals.json"
check "the forbidden-purpose refusal's reason is logged" grep -q 'immigration' "$T/refusals.json"
expect_exit 4 "hold show of an unknown case" "$SB" hold show C-1
HOLDS_BEFORE=$("$SB" hold list --json)
check "no hold exists after refusals" test "$(printf '%s' "$HOLDS_BEFORE" | tr -d ' \n')" = "[]"

expect_exit 0 "a lawful hold opens" \
	"$SB" hold open C-1 --authority "Warrant 2026-114" --purpose criminal-investigation --operator tech1 --days 30
expect_exit 0 "hold show --json" "$SB" hold show C-1 --json
check "the hold is open with its authority" sh -c "printf '%s' '$OUT' | grep -q '\"status\": \"open\"' && printf '%s' '$OUT' | grep -q 'Warrant 2026-114'"
expect_exit 5 "a second hold for the same case is refused" \
	"$SB" hold open C-1 --authority W-2 --purpose prosecution --operator tech1
expect_exit 0 "the hold renews" "$SB" hold renew C-1 --authority "Order 77" --operator tech2
expect_exit 0 "hold list" "$SB" hold list
check "hold list shows the case" sh -c "printf '%s' '$OUT' | grep -q '^C-1 *open'"
expect_exit 0 "the hold closes" "$SB" hold close C-1 --operator tech1 --json
check "...--json gives the closed hold and what it purged (nothing here)" sh -c "printf '%s' \"\$0\" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d[\"status\"] == \"closed\" and d[\"purged\"] == {\"bundles\": 0, \"reads\": 0}, d'" "$OUT"
expect_exit 5 "closing twice is refused" "$SB" hold close C-1 --operator tech1
expect_exit 5 "a closed case is never reopened" \
	"$SB" hold open C-1 --authority W-3 --purpose prosecution --operator tech1
expect_exit 5 "renewing a closed case is a state error, as closing twice is" \
	"$SB" hold renew C-1 --authority W-4 --operator tech1
check "...and says so" sh -c "printf '%s' \"\$0\" | grep -q 'is closed; a closed case cannot be renewed'" "$ERR"
expect_exit 0 "log show --json" "$SB" log show --json
check "...the refused renewal is recorded as denied" sh -c "printf '%s' \"\$0\" | python3 -c '
import json, sys
r = json.load(sys.stdin)[-1]
assert (r[\"event\"], r[\"outcome\"], r[\"case\"]) == (\"hold.renew\", \"denied\", \"C-1\"), r'" "$OUT"
expect_exit 4 "renewing an unknown case" "$SB" hold renew C-9 --authority X --operator tech1

# --- policy ---------------------------------------------------------------
expect_exit 0 "policy show --json" "$SB" policy show --json
OLDHASH=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hash"])')
"$SB" policy show | sed 1d > "$T/current.conf"
check "policy show prints the exact bytes in force" \
	test "$(sha256sum < "$T/current.conf" | cut -d' ' -f1)" = "$OLDHASH"
before=$(snap)
printf 'sealbox-policy = 1\npurpose = ai-training\n' > "$T/evil.conf"
expect_exit 3 "a policy allowing a forbidden purpose is refused" "$SB" policy set "$T/evil.conf" --operator tech1
expect_exit 0 "policy unchanged" "$SB" policy show --json
check "the hash in force did not move" sh -c "printf '%s' '$OUT' | grep -q '$OLDHASH'"
sed 's/^retention_days *= *21/retention_days = 14/' "$T/current.conf" > "$T/new.conf"
check "test policy differs" sh -c "! cmp -s '$T/new.conf' '$T/current.conf'"
expect_exit 0 "a valid policy is put in force" "$SB" policy set "$T/new.conf" --operator admin1
NEWHASH=$(sha256sum < "$T/new.conf" | cut -d' ' -f1)
expect_exit 0 "log show --json" "$SB" log show --json
printf '%s' "$OUT" > "$T/log.json"
python3 - "$T/log.json" "$OLDHASH" "$NEWHASH" <<'PY' && ok "records before the change bind the old hash, the change and after bind the new" || fail "policy hash binding"
import json, sys
recs = json.load(open(sys.argv[1])); old, new = sys.argv[2], sys.argv[3]
i = next(k for k, r in enumerate(recs) if r["event"] == "policy.set" and r["outcome"] == "ok")
assert all(r["policy_hash"] == old for r in recs[:i]), "before"
assert recs[i]["policy_hash"] == new and recs[i]["detail"]["previous"] == old
assert all(r["policy_hash"] == new for r in recs[i:])
PY
expect_exit 7 "policy set of a missing file" "$SB" policy set "$T/none.conf" --operator tech1

# --- the custody log --------------------------------------------------------
expect_exit 0 "log verify passes" "$SB" log verify
expect_exit 0 "log verify --json" "$SB" log verify --json
check "verify --json says valid" sh -c "printf '%s' '$OUT' | grep -q '\"valid\": true'"
expect_exit 0 "log export" "$SB" log export "$T/export.sbxl" --operator auditor1
check "export written" test -s "$T/export.sbxl"
check "no temporary file left beside the export" sh -c "! ls '$T' | grep -q 'export.sbxl.tmp'"
expect_exit 2 "log export without --operator (a custody record names a person)" \
	"$SB" log export "$T/export3.sbxl"
check "...and writes nothing" test ! -e "$T/export3.sbxl"
expect_exit 0 "log export --json" "$SB" log export "$T/export2.sbxl" --operator auditor1 --json
check "...names the file, its size and SHA-256, as its log.export record does" sh -c "printf '%s' \"\$0\" | python3 -c '
import hashlib, json, sys
d = json.load(sys.stdin)
b = open(sys.argv[1], \"rb\").read()
assert d[\"bytes\"] == len(b) and d[\"sha256\"] == hashlib.sha256(b).hexdigest(), d
assert d[\"records\"] > 0 and d[\"heads\"] > 0 and d[\"export_record_seq\"] == d[\"records\"], d' \"\$1\"" "$OUT" "$T/export2.sbxl"
expect_exit 0 "log checkpoint --json" "$SB" log checkpoint --operator auditor1 --json
check "...gives the anchored tree size" sh -c "printf '%s' \"\$0\" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d[\"tree_size\"] == d[\"record_seq\"] + 1 > 1, d'" "$OUT"
expect_exit 0 "log checkpoint" "$SB" log checkpoint --operator auditor1
expect_exit 0 "log verify after export and checkpoint" "$SB" log verify

# --- bad input: clear one-line errors, documented codes, nothing changed ------
before=$(snap)
expect_exit 2 "unknown command" "$SB" frobnicate
expect_exit 2 "unknown hold subcommand" "$SB" hold explode C-1
check "...one line whose hint is the group's help, not the bad verb's" \
	test "$ERR" = "sealbox hold: unknown subcommand 'explode' (see 'sealbox hold --help')"
expect_exit 2 "unknown option" "$SB" hold list --bogus
check "...one line, prefixed by the command, no usage text" \
	test "$ERR" = "sealbox hold list: unknown option '--bogus' (see 'sealbox hold list --help')"
expect_exit 2 "an option without its argument" "$SB" hold open C-9 --operator
check "...one line naming the option, no getopt message" \
	test "$ERR" = "sealbox hold open: option '--operator' needs an argument (see 'sealbox hold open --help')"
expect_exit 2 "an unknown short option" "$SB" ingest -z x.csv
check "...one line" test "$ERR" = "sealbox ingest: unknown option '-z' (see 'sealbox ingest --help')"
expect_exit 5 "a state directory that was never provisioned" "$SB" --state "$T/nowhere" hold list
expect_exit 6 "TPM unreachable for a change" \
	"$SB" --tcti "swtpm:path=$T/nonexistent.sock" hold open C-2 --authority W --purpose prosecution --operator t
check "one line on stderr" test "$(printf '%s\n' "$ERR" | wc -l)" -eq 1
expect_exit 7 "init into a location that cannot be created" "$SB" init --operator t.installer --state /proc/sbx-cannot-exist
chmod 000 "$S" 2>/dev/null
if [ "$(id -u)" -ne 0 ]; then
	expect_exit 7 "unreadable state directory" "$SB" hold list
fi
chmod 700 "$S"
check "refused commands changed nothing" test "$before" = "$(snap)"
expect_exit 0 "help" "$SB" --help
expect_exit 0 "hold --help" "$SB" hold --help

# Expiry last: the refusal below is logged at a time 91 days ahead, and
# record times never go backwards after it.
expect_exit 0 "a second lawful hold" \
	"$SB" hold open C-5 --authority "Warrant 2026-200" --purpose prosecution --operator tech1 --days 30
NOW=$(date +%s%3N)
expect_exit 0 "the box sees the hold expired 91 days later" \
	env SEALBOX_TEST_NOW_MS=$((NOW + 91*86400000)) "$SB" hold show C-5 --json
check "status expired" sh -c "printf '%s' '$OUT' | grep -q '\"status\": \"expired\"'"
expect_exit 3 "an expired hold cannot be renewed" \
	env SEALBOX_TEST_NOW_MS=$((NOW + 91*86400000)) "$SB" hold renew C-5 --authority X --operator tech1
expect_exit 0 "log verify after the clock moved" "$SB" log verify
done_testing
