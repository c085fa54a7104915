#!/usr/bin/env bash
# Tampering with a 1,000-record custody log: every kind of change must be
# caught by `sealbox log verify` (exit 1), 100%.
. "$(dirname "$0")/../lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-tamper.XXXXXX")
trap 'swtpm_stop "$T/tpm" >/dev/null 2>&1; rm -rf "$T"' EXIT
swtpm_start "$T/tpm" || { fail "swtpm starts"; done_testing; exit 1; }
SB="$SBX_BIN/sealbox"
S="$T/state"
export SEALBOX_STATE="$S"
DB="$S/sealbox.db"

"$SB" init --operator tech1 >/dev/null || fail "init"
"$SBX_BIN/tests/tools/logfill" "$S" 999 || fail "logfill"
N=$(sqlite3 "$DB" 'SELECT count(*) FROM records')
check "the log holds 1,000 records" test "$N" -eq 1000
expect_exit 0 "the untouched log verifies" "$SB" log verify
cp "$DB" "$T/orig.db"

detected=0 tried=0
mutate() {   # description, SQL
	cp "$T/orig.db" "$DB"
	sqlite3 "$DB" "$2" || { fail "$1: could not apply"; return; }
	tried=$((tried + 1))
	expect_exit 1 "detected: $1" "$SB" log verify
	[ "$OUT" != "" ] && printf '%s\n' "$OUT" | grep -q 'INVALID' && detected=$((detected + 1))
}
# One record modified: a byte of its canonical body, in each region.
mutate "record 500: a byte of the operator changed" \
  "UPDATE records SET body = CAST(substr(body,1,140) || X'7A' || substr(body,142) AS BLOB) WHERE seq=500"
mutate "record 0 (provision): a byte of the detail changed" \
  "UPDATE records SET body = CAST(substr(body,1,length(body)-1) || X'21' AS BLOB) WHERE seq=0"
mutate "record 999: its time changed" \
  "UPDATE records SET body = CAST(substr(body,1,6) || X'FF' || substr(body,8) AS BLOB) WHERE seq=999"
mutate "record 300: index column changed to hide the event" \
  "UPDATE records SET event='view' WHERE seq=300 AND event!='view'; UPDATE records SET case_id='OTHER' WHERE seq=300"
mutate "record deleted from the middle" "DELETE FROM records WHERE seq=500"
mutate "record inserted (a copy appended)" \
  "INSERT INTO records SELECT 1000, body, leaf, time_ms, event, outcome, case_id, bundle_id FROM records WHERE seq=10"
mutate "records reordered (10 and 11 swapped)" \
  "UPDATE records SET body = CASE seq WHEN 10 THEN (SELECT body FROM records WHERE seq=11) ELSE (SELECT body FROM records WHERE seq=10) END WHERE seq IN (10,11)"
mutate "record duplicated (11 := 10)" \
  "UPDATE records SET body = (SELECT body FROM records WHERE seq=10) WHERE seq=11"
mutate "tail truncated (records only)" "DELETE FROM records WHERE seq >= 990"
# The filler's last record is anchored to the TPM counter, as every
# state-changing event and every refusal is (docs/LOG-FORMAT.md).
mutate "tail truncated (records and their heads)" \
  "DELETE FROM records WHERE seq >= 990; DELETE FROM heads WHERE tree_size > 990"
mutate "a tree head's root changed" \
  "UPDATE heads SET body = CAST(substr(body,1,50) || X'00' || substr(body,52) AS BLOB) WHERE tree_size=700"
mutate "a tree head's signature removed" "UPDATE heads SET sig = NULL WHERE tree_size=1000"
mutate "a tree head's counter moved back" \
  "UPDATE heads SET counter = counter - 1 WHERE tree_size=1000"

# A head signed by a different key (stock openssl plays the forger).
cp "$T/orig.db" "$DB"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/forger.pem" 2>/dev/null
sqlite3 "$DB" "SELECT hex(body) FROM heads WHERE tree_size=1000" | xxd -r -p > "$T/head.bin"
{ printf 'sealbox-sth-v1\0'; cat "$T/head.bin"; } > "$T/signed.bin"
openssl dgst -sha256 -sign "$T/forger.pem" -out "$T/forged.sig" "$T/signed.bin"
sqlite3 "$DB" "UPDATE heads SET sig = X'$(xxd -p "$T/forged.sig" | tr -d '\n')' WHERE tree_size=1000"
tried=$((tried + 1))
expect_exit 1 "detected: the newest head signed by a different key" "$SB" log verify
printf '%s\n' "$OUT" | grep -q 'INVALID' && detected=$((detected + 1))

# The database replaced by an older copy: the TPM counter has moved on.
cp "$T/orig.db" "$DB"
cp "$DB" "$T/older.db"
"$SB" hold open C-7 --authority W-7 --purpose prosecution --operator tech1 >/dev/null || fail "hold open"
cp "$T/older.db" "$DB"
tried=$((tried + 1))
expect_exit 1 "detected: database replaced by an older copy" "$SB" log verify
printf '%s\n' "$OUT" | grep -q 'INVALID' && detected=$((detected + 1))
expect_exit 8 "the rolled-back box refuses every change (integrity alarm)" \
	"$SB" hold open C-8 --authority W-8 --purpose prosecution --operator tech1
check "the alarm says the database is older than the TPM" sh -c "printf '%s' \"\$0\" | grep -q 'older than the TPM'" "$ERR"

check "detected $detected of $tried tamperings (100%)" test "$detected" -eq "$tried"
done_testing
