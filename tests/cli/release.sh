#!/usr/bin/env bash
# sealbox release end to end on a real swtpm and the GPIO simulator: the
# authorization matrix, the button rules, and a release that opens.
. "$(dirname "$0")/../lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-release.XXXXXX")
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

# --- a box, a PKI, recipients, a case with evidence ------------------------------
P="$T/pki"; mkdir -p "$P"
mkca() {   # name, org
	openssl ecparam -name prime256v1 -genkey -noout -out "$P/$1.key" 2>/dev/null
	openssl req -x509 -new -key "$P/$1.key" -subj "/O=$2/CN=$1" -days 3650 \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-out "$P/$1.pem" 2>/dev/null
}
mkleaf() {   # name, ca, org
	openssl ecparam -name prime256v1 -genkey -noout -out "$P/$1.key" 2>/dev/null
	openssl req -new -key "$P/$1.key" -subj "/O=$3/CN=$1" -out "$P/$1.csr" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,keyAgreement,digitalSignature\n' > "$P/$1.ext"
	openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.pem" -CAkey "$P/$2.key" -CAcreateserial \
		-days 365 -extfile "$P/$1.ext" -out "$P/$1.pem" 2>/dev/null
}
mkca prosecutor-ca "Denver DA"; mkca court-ca "Denver District Court"
mkleaf ada prosecutor-ca "Denver DA"; mkleaf ada2 prosecutor-ca "Denver DA"; mkleaf clerk court-ca "Denver District Court"
"$SB" init --operator tech1 >/dev/null || fail "init"
check "a provisioned box shows ready (green solid)" \
	sh -c "'$SIM' leds '$T/gpio.sock' | grep -qx 'green=on amber=off red=off'"
"$SB" trust add --role prosecutor "$P/prosecutor-ca.pem" --operator admin >/dev/null || fail "trust add prosecutor"
"$SB" trust add --role court "$P/court-ca.pem" --operator admin >/dev/null || fail "trust add court"
"$SB" recipient add ada "$P/ada.pem" --role prosecutor --attestation ATT-1 --operator admin >/dev/null || fail "recipient ada"
"$SB" recipient add ada2 "$P/ada2.pem" --role prosecutor --attestation ATT-3 --operator admin >/dev/null || fail "recipient ada2"
"$SB" recipient add clerk "$P/clerk.pem" --role court --attestation ATT-2 --operator admin >/dev/null || fail "recipient clerk"
"$SBX_BIN/tests/tools/gen_reads" --out "$T/ex" --count 30 --seed 5 --format csv >/dev/null
"$SB" hold open C-1 --authority W-1 --purpose criminal-investigation --operator tech1 >/dev/null
"$SB" ingest C-1 "$(ls "$T"/ex/*.csv)" --operator tech1 >/dev/null || fail "ingest"
"$SB" hold open C-2 --authority W-2 --purpose criminal-investigation --operator tech1 >/dev/null
"$SB" ingest C-2 "$(ls "$T"/ex/*.csv)" --operator tech1 >/dev/null || fail "ingest C-2"
"$SB" hold close C-2 --operator tech1 >/dev/null

rel() {   # out-dir, timeout, extra args...: a release request
	local out=$1 to=$2; shift 2
	"$SB" release C-1 --to ada --purpose prosecution --authority "Order 9" --operator tech1 \
		--out "$T/$out" --timeout "$to" "$@"
}
nothing_in() { [ ! -d "$T/$1" ] || [ -z "$(ls -A "$T/$1")" ]; }
count() { "$SB" log show --json | python3 -c "import json,sys; print(sum(1 for r in json.load(sys.stdin) if r['event']=='$1' and r['outcome']=='$2'))"; }

# --- the authorization matrix (what the recipient checks do not already cover) ------
deny() {   # description, args for sealbox release...
	local d=$1; shift
	local before; before=$(count release.deny denied)
	expect_exit 3 "refused: $d" "$SB" release "$@" --operator tech1 --out "$T/denied" --timeout 2
	check "nothing written: $d" nothing_in denied
	check "refusal logged: $d" test "$(count release.deny denied)" -eq $((before + 1))
}
deny "forbidden purpose" C-1 --to ada --purpose civil-immigration-enforcement --authority A
deny "unknown purpose" C-1 --to ada --purpose curiosity --authority A
deny "purpose not allowed for the role" C-1 --to clerk --purpose prosecution --authority A
deny "authority missing" C-1 --to ada --purpose prosecution
deny "hold closed" C-2 --to ada --purpose prosecution --authority A
deny "no hold at all" C-9 --to ada --purpose prosecution --authority A
expect_exit 4 "unknown recipient" "$SB" release C-1 --to nobody --purpose prosecution --authority A \
	--operator tech1 --out "$T/denied" --timeout 2
check "nothing written for an unknown recipient" nothing_in denied

# --- the button -------------------------------------------------------------------
expect_exit 9 "no press: the request times out" rel t1 1
check "nothing written on a timeout" nothing_in t1
check "the timeout is logged" test "$(count release.timeout timeout)" -ge 1

for _ in $(seq 100); do "$SIM" press "$T/gpio.sock" --hold-ms 35 >/dev/null; done
expect_exit 9 "100 presses before arming do not count" rel t2 2
check "nothing written after presses before arming" nothing_in t2

"$SIM" button "$T/gpio.sock" pressed
( "$SIM" wait-led "$T/gpio.sock" amber=blink --timeout-ms 20000 >/dev/null && sleep 0.3 &&
  "$SIM" button "$T/gpio.sock" released ) & H=$!
expect_exit 9 "a button held at arming (then let go) does not count" rel t3 3
wait $H
check "nothing written for a held button" nothing_in t3

( "$SIM" wait-led "$T/gpio.sock" amber=blink --timeout-ms 20000 >/dev/null &&
  "$SIM" press "$T/gpio.sock" --hold-ms 5 ) & H=$!
expect_exit 9 "a glitch shorter than the debounce does not count" rel t4 3
wait $H
check "nothing written for a glitch" nothing_in t4

expect_exit 9 "a request nobody confirms" rel t5 1
"$SIM" press "$T/gpio.sock" >/dev/null
check "a press after the timeout released nothing" nothing_in t5

# Two requests pending, one press: exactly one release, the one on screen.
( "$SIM" wait-led "$T/gpio.sock" amber=blink --timeout-ms 20000 >/dev/null && sleep 0.3 &&
  "$SIM" press "$T/gpio.sock" >/dev/null ) & H=$!
rel twoA 10 > "$T/twoA.out" 2>&1 & A=$!
sleep 0.5
rel twoB 4 > "$T/twoB.out" 2>&1 & B=$!
wait $A; ra=$?
wait $B; rb=$?
wait $H
check "the request on screen was released (exit $ra)" test "$ra" -eq 0
check "the second request was not (exit $rb)" test "$rb" -eq 9
check "exactly one set of release files" sh -c "test -n \"\$(ls -A '$T/twoA')\" && { [ ! -d '$T/twoB' ] || [ -z \"\$(ls -A '$T/twoB')\" ]; }"
CODE=$(sed -n 's/.*RELEASE REQUEST *//p' "$T/twoA.out" | head -n 1)
check "the confirmation code shown ($CODE) is the one recorded" sh -c "test -n '$CODE' && '$SB' log show --json | grep -q '\"confirmation\": \"$CODE\"'"

# --- a confirmed release --------------------------------------------------------------
( "$SIM" wait-led "$T/gpio.sock" amber=blink --timeout-ms 20000 >/dev/null && sleep 0.2 &&
  "$SIM" press "$T/gpio.sock" >/dev/null ) & H=$!
expect_exit 0 "a release confirmed by a fresh press" rel ok 20 --json
wait $H
check "release --json names the confirmation code" sh -c "printf '%s' '$OUT' | grep -q '\"confirmation\"'"
check "a bundle and its release file per bundle" test "$(ls "$T/ok" | wc -l)" -eq 2
B1=$(ls "$T/ok" | sed -n 's/\.sbx$//p')
check "the released bundle is bit-identical to the sealed one" cmp "$T/ok/$B1.sbx" "$T/state/bundles/$B1.sbx"
check "green blinks when done" sh -c "'$SIM' leds '$T/gpio.sock' | grep -q 'green=blink'"
"$SB" identity --out "$T/identity.sbxi" >/dev/null
"$SB" log export "$T/log.sbxl" --operator auditor1 >/dev/null
if [ -x "$SBX_BIN/sealbox-verify" ]; then
	expect_exit 0 "sealbox-verify accepts the released bundle" "$SBX_BIN/sealbox-verify" "$T/ok/$B1.sbx" \
		--identity "$T/identity.sbxi" --ek-ca "$SBX_TEST_EKCA" --log "$T/log.sbxl"
fi
if [ -x "$SBX_BIN/sealbox-open" ]; then
	expect_exit 0 "the recipient opens it" "$SBX_BIN/sealbox-open" "$T/ok/$B1.sbx" --key "$P/ada.key" \
		--cert "$P/ada.pem" --out "$T/opened"
	expect_exit 1 "another recipient's key cannot" "$SBX_BIN/sealbox-open" "$T/ok/$B1.sbx" --key "$P/ada2.key" \
		--cert "$P/ada2.pem" --out "$T/opened2"
	check "and leaves nothing" test ! -e "$T/opened2" -o -z "$(ls -A "$T/opened2" 2>/dev/null)"
fi
expect_exit 0 "log verify after releases" "$SB" log verify

# --- the integrity alarm: a restored older database freezes releases -------------
cp "$T/state/sealbox.db" "$T/older.db"
"$SB" log checkpoint --operator auditor1 >/dev/null
cp "$T/older.db" "$T/state/sealbox.db"
check "the lights still say done before anything notices" sh -c "'$SIM' leds '$T/gpio.sock' | grep -q 'green=blink'"
expect_exit 8 "a change under the alarm is refused" "$SB" log checkpoint --operator auditor1
check "...and whatever command meets the alarm blinks red" \
	sh -c "'$SIM' leds '$T/gpio.sock' | grep -qx 'green=off amber=off red=blink'"
expect_exit 8 "a release under an integrity alarm is refused" rel alarm 2
check "nothing written under the alarm" nothing_in alarm
check "red blinks under the alarm" sh -c "'$SIM' leds '$T/gpio.sock' | grep -q 'red=blink'"
expect_exit 8 "alarm show reports it" "$SB" alarm show
expect_exit 2 "clearing needs a reason" "$SB" alarm clear --operator auditor1
expect_exit 0 "the auditor clears the alarm" "$SB" alarm clear --operator auditor1 \
	--reason "test: database restored from an older copy on purpose"
check "...and the lights say ready again (green solid, red off)" \
	sh -c "'$SIM' leds '$T/gpio.sock' | grep -qx 'green=on amber=off red=off'"
expect_exit 0 "no alarm after clearing" "$SB" alarm show
NA=$(count integrity.alarm failed); NC=$(count integrity.clear ok)
check "the alarm and its clearing are in the log ($NA, $NC)" test "$NA" -ge 1 -a "$NC" -eq 1
expect_exit 0 "log verify after the clearing" "$SB" log verify

# --- expiry last: the clock moves forward and never back --------------------------
NOW=$(date +%s%3N)
before=$(count release.deny denied)
expect_exit 3 "refused: hold expired" env SEALBOX_TEST_NOW_MS=$((NOW + 91*86400000)) \
	"$SB" release C-1 --to ada --purpose prosecution --authority A --operator tech1 --out "$T/exp" --timeout 2
check "nothing written for an expired hold" nothing_in exp
check "refusal logged: hold expired" test "$(count release.deny denied)" -eq $((before + 1))

done_testing
