#!/usr/bin/env bash
# sealbox ingest end to end on a real swtpm: policy at the door, sealing,
# all-or-nothing on hostile input, verification on the box, export, purge.
. "$(dirname "$0")/../lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-ingest.XXXXXX")
trap 'swtpm_stop "$T/tpm" >/dev/null 2>&1; rm -rf "$T"' EXIT
swtpm_start "$T/tpm" || { fail "swtpm starts"; done_testing; exit 1; }
SB="$SBX_BIN/sealbox"
GEN="$SBX_BIN/tests/tools/gen_reads"
S="$T/state"
export SEALBOX_STATE="$S"

"$SB" init --operator tech1 >/dev/null || fail "init"
"$GEN" --out "$T/ex1" --count 40 --seed 1 --format csv >/dev/null || fail "gen csv"
"$GEN" --out "$T/ex2" --count 25 --seed 2 --format jsonl --archive tar.gz >/dev/null || fail "gen tar.gz"
"$GEN" --out "$T/ex3" --count 10 --seed 3 --format csv --archive zip >/dev/null || fail "gen zip"
CSV=$(ls "$T"/ex1/*.csv | head -n 1)
TGZ=$(ls "$T"/ex2/*.tar.gz | head -n 1)
ZIP=$(ls "$T"/ex3/*.zip | head -n 1)

state_files() { (cd "$S" && find bundles -type f 2>/dev/null | sort; sqlite3 sealbox.db 'SELECT count(*) FROM bundles') ; }
events() { "$SB" log show --json | python3 -c 'import json,sys; print(" ".join(r["event"]+":"+r["outcome"] for r in json.load(sys.stdin)))'; }

# --- policy at the door ---------------------------------------------------------
before=$(state_files)
expect_exit 3 "ingest for a case without a hold is refused" "$SB" ingest C-1 "$CSV" --operator tech1
check "nothing sealed without a hold" test "$before" = "$(state_files)"
check "the refusal is logged" sh -c "'$SB' log show --json | grep -q '\"event\": \"ingest\"'"

"$SB" hold open C-1 --authority W-1 --purpose criminal-investigation --operator tech1 >/dev/null
expect_exit 0 "ingest a CSV export with images" "$SB" ingest C-1 "$CSV" --operator tech1 --source vendor-a --json
B1=$(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["bundle"]); assert d["reads"]==40' ) || fail "ingest --json"
check "the bundle is on the box" test -f "$S/bundles/$B1.sbx"
check "bsdtar lists exactly the four entries" \
	sh -c "bsdtar -tf '$S/bundles/$B1.sbx' | tr '\n' ' ' | grep -qx 'manifest.json manifest.sig identity.sbxi payload.enc '"
check "the bundle id is the SHA-256 of manifest.json" \
	sh -c "bsdtar -xOf '$S/bundles/$B1.sbx' manifest.json | sha256sum | grep -q '^$B1 '"
check "no plaintext read in the bundle" sh -c "! grep -qa 'vendor_read_id' '$S/bundles/$B1.sbx'"
expect_exit 0 "ingest a tar.gz of JSON Lines" "$SB" ingest C-1 "$TGZ" --operator tech1
check "...without a terminal, no progress line on stderr" test -z "$ERR"
# On a terminal (script(1) gives it one) a person sees what the box is doing,
# and the line is erased before the result is printed.
script -qec "'$SB' ingest C-1 '$ZIP' --operator tech1" /dev/null > "$T/tty.out" 2>&1
check "ingest a zip, on a terminal" grep -q 'sealed bundle [0-9a-f]\{64\}' "$T/tty.out"
check "...shows progress while it works" \
	grep -q 'ingest: checking the whole export first' "$T/tty.out"
check "...and erases it: the result starts a clean line" \
	sh -c "grep -a 'sealed bundle' '$T/tty.out' | grep -q \"\$(printf '\\033\\[K')sealed bundle\""
expect_exit 0 "bundle list --json" "$SB" bundle list --case C-1 --json
check "three bundles for the case" test "$(printf '%s' "$OUT" | grep -c '"id"')" -eq 3
expect_exit 0 "bundle verify --decrypt: the TPM unwraps, every chunk and item authenticates" \
	"$SB" bundle verify "$B1" --decrypt --operator tech2
expect_exit 0 "bundle export" "$SB" bundle export "$B1" --out "$T/out"
check "exported bundle is bit-identical" cmp "$S/bundles/$B1.sbx" "$T/out/$B1.sbx"
check "custody file exported" test -s "$T/out/$B1.custody"
expect_exit 0 "log verify after ingests" "$SB" log verify

# --- all or nothing on bad input --------------------------------------------------
hostile() {   # description, file
	local before; before=$(state_files)
	expect_exit 2 "refused: $1" "$SB" ingest C-1 "$2" --operator tech1
	check "nothing sealed: $1" test "$before" = "$(state_files)"
}
printf 'vendor_read_id,plate,captured_at,camera_id\n"r1,ABC123,2026-11-01T00:00:00Z,cam1\n' > "$T/unbalanced.csv"
hostile "a CSV with an unbalanced quote" "$T/unbalanced.csv"
printf 'vendor_read_id,plate,captured_at,camera_id\nr1,ABC123,not-a-time,cam1\n' > "$T/badtime.csv"
hostile "a CSV with a malformed time" "$T/badtime.csv"
printf 'vendor_read_id,plate,captured_at,camera_id\nr1,ABC123,2026-11-01T00:00:00Z,cam1\nr1,XYZ789,2026-11-01T00:00:01Z,cam1\n' > "$T/dup.csv"
hostile "duplicate vendor read ids" "$T/dup.csv"
printf '{"vendor_read_id":"r1","plate":"ABC","plate":"DEF","captured_at":"2026-11-01T00:00:00Z","camera_id":"c"}\n' > "$T/dupkey.jsonl"
hostile "JSON with a duplicate key" "$T/dupkey.jsonl"
cp "$CSV" "$T/ex1/mixed.csv"; printf 'oops,,,\n' >> "$T/ex1/mixed.csv"
hostile "a good export with one bad line at the end" "$T/ex1/mixed.csv"
: > "$T/empty.csv"
hostile "an empty export" "$T/empty.csv"
check "each failure is logged with its reason" sh -c "test \$('$SB' log show --json | grep -c '\"outcome\": \"failed\"') -ge 5"
check "no temporary file left in the bundles directory" sh -c "! ls '$S/bundles' | grep -q tmp"

# --- reads in the future, reads older than retention -------------------------
NOW=$(date +%s%3N)
printf 'vendor_read_id,plate,captured_at,camera_id\nr1,ABC123,%s,cam1\n' "$((NOW + 3*86400000))" > "$T/future.csv"
before=$(state_files)
expect_exit 3 "a read captured in the future is refused" "$SB" ingest C-1 "$T/future.csv" --operator tech1
check "nothing sealed for the future read" test "$before" = "$(state_files)"
printf 'vendor_read_id,plate,captured_at,camera_id\nold1,ABC123,%s,cam1\n' "$((NOW - 40*86400000))" > "$T/old.csv"
expect_exit 0 "a read older than retention is accepted under the open hold" "$SB" ingest C-1 "$T/old.csv" --operator tech1 --json
check "and counted as kept only because of the hold" sh -c "printf '%s' '$OUT' | grep -q '\"older_than_retention\": 1'"

# --- purge on close ------------------------------------------------------------
cp "$S/bundles/$B1.sbx" "$T/kept-copy.sbx"
"$SB" bundle list --case C-1 --json > "$T/before-close.json"
READS=$(python3 -c 'import json,sys; print(sum(b["reads"] for b in json.load(open(sys.argv[1]))))' "$T/before-close.json")
expect_exit 0 "the hold closes" "$SB" hold close C-1 --operator tech1
check "...and says what it destroyed: 4 bundles, $READS reads" \
	test "$OUT" = "close: case C-1 closed; 4 bundle(s) with $READS read(s) purged (content keys destroyed, files deleted)"
check "the case's bundle files are gone" sh -c "! ls '$S/bundles' | grep -q sbx"
expect_exit 0 "bundle list after purge" "$SB" bundle list --json
check "every bundle is marked purged" sh -c "printf '%s' '$OUT' | grep -q purged && ! printf '%s' '$OUT' | grep -q '\"sealed\"'"
check "no wrapped key survives in the database" test "$(sqlite3 "$S/sealbox.db" 'SELECT count(*) FROM bundles WHERE wrapped_key IS NOT NULL')" -eq 0
check "one purge record per bundle" test "$(events | tr ' ' '\n' | grep -c '^purge:ok')" -eq 4
check "log show tells the purge rows apart by bundle" \
	test "$("$SB" log show | awk '$3 == "purge" { print $7 }' | grep -Ec '^[0-9a-f]{12}$' )" -eq 4 -a \
	"$("$SB" log show | awk '$3 == "purge" { print $7 }' | sort -u | wc -l)" -eq 4
cp "$T/kept-copy.sbx" "$S/bundles/$B1.sbx"
expect_exit 4 "a copy kept from before the purge cannot be opened by the box" \
	"$SB" bundle verify "$B1" --decrypt --operator tech1
check "and the box removes the stray copy" test ! -e "$S/bundles/$B1.sbx"
expect_exit 0 "log verify after the purge" "$SB" log verify

done_testing
