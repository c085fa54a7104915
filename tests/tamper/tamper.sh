#!/usr/bin/env bash
# Tamper campaigns (issue 5): every mutation of a bundle, a release and a
# custody-log export must be rejected, and a rejected open must leave no
# plaintext behind.
#
#   tamper.sh quick   reduced (part of make check): small inputs made on the
#                     spot, a deterministic sample of every campaign
#   tamper.sh full    every bit of a 64 KiB bundle (524,288 flips), every
#                     byte of a 1 MiB released bundle and its release file,
#                     every single-record mutation and every truncation of a
#                     10,000-record log export (inputs cached in
#                     $BUILD/tamper-inputs; minutes)
#
# The bulk runs in-process (tests/tamper/flipper: the library calls
# sealbox-verify and sealbox-open make); a sample goes through the real
# programs, whose exit codes and output directory are checked.
. "$(dirname "$0")/../lib/common.sh"

MODE=${1:-quick}
BUILD=${BUILD:-build/release}
F="$SBX_BIN/tests/tamper/flipper"
JOBS=${TAMPER_JOBS:-2}
case $MODE in
quick)
	IN=$(mktemp -d "${TMPDIR:-/tmp}/sbx-tamper.XXXXXX")
	trap 'rm -rf "$IN"' EXIT
	IN="$IN/in"
	SIZES="40 60 150"       # reads, reads, records: any size will do
	STEP_BITS=97 STEP_BYTES=211 STEP_LOG=7 STEP_CUT=13 CLI_SAMPLES=6
	;;
full)
	IN="$SBX_TOP/$BUILD/tamper-inputs"
	SIZES="65536 1048576 10000"
	STEP_BITS=1 STEP_BYTES=1 STEP_LOG=1 STEP_CUT=1 CLI_SAMPLES=40
	;;
*)
	echo "usage: tamper.sh quick|full" >&2
	exit 2
	;;
esac

[ -x "$F" ] || { fail "flipper is built ($F)"; done_testing; exit 1; }
# shellcheck disable=SC2086
if bash "$SBX_TOP/tests/tamper/mkinputs.sh" "$IN" $SIZES >"$IN.log" 2>&1; then
	ok "inputs made on a real box ($(tr '\n' ';' < "$IN/sizes.txt"))"
else
	fail "inputs: $(tail -n 3 "$IN.log")"
	done_testing
	exit 1
fi
rm -f "$IN.log"
PIN=(--identity "$IN/identity.sbxi" --ek-ca "$IN/ekca.pem")

# One ok/fail per campaign line of the flipper ("campaign NAME: N
# mutations, R rejected, A accepted, L left files behind, ...").
campaigns() {   # description, flipper arguments...
	local d=$1 out rc line n=0 nf=0
	shift
	out=$("$F" "$@" --jobs "$JOBS" 2>&1); rc=$?
	while IFS= read -r line; do
		case $line in
		"campaign "*)
			n=$((n + 1))
			if [[ $line =~ ,\ 0\ accepted,\ 0\ left ]] && [[ ! $line =~ \ 0\ mutations ]]; then
				ok "$d: ${line#campaign }"
			else
				fail "$d: ${line#campaign }"
				nf=$((nf + 1))
			fi ;;
		"ACCEPTED "* | "LEFT BEHIND "*)
			echo "# $line" ;;
		esac
	done <<<"$out"
	[ "$n" -gt 0 ] || fail "$d: no campaign ran: $(printf '%s' "$out" | tail -n 3)"
	if [ "$rc" -ne 0 ] && [ "$n" -gt 0 ] && [ "$nf" -eq 0 ]; then
		fail "$d: flipper exited $rc: $(printf '%s' "$out" | grep -v '^campaign' | tail -n 3)"
	fi
}

campaigns "bundle bits, sealbox-verify path" bits "$IN/small.sbx" --custody "$IN/small.custody" \
	"${PIN[@]}" --step "$STEP_BITS"
campaigns "release bytes, sealbox-open path" bytes "$IN/big.sbx" "$IN/big.release" \
	--key "$IN/ada.key" --cert "$IN/ada.pem" "${PIN[@]}" --scratch "$IN/scratch" --step "$STEP_BYTES"
for kind in modify delete insert swap duplicate truncate-records rollback; do
	campaigns "log export, sealbox-verify --log path" log "$IN/log.sbxl" "${PIN[@]}" \
		--only "$kind" --step "$STEP_LOG"
done
campaigns "log export, sealbox-verify --log path" log "$IN/log.sbxl" "${PIN[@]}" \
	--only truncate-bytes --step "$STEP_CUT"

# --- the real programs, on a sample ------------------------------------------------
V="$SBX_BIN/sealbox-verify"
O="$SBX_BIN/sealbox-open"
W="$IN/cli"
mkdir -p "$W"
size() { stat -c %s "$1"; }
# Offsets spread over the whole file, the first and last byte included.
offsets() {   # file size, count
	python3 -c 'import sys; n, k = int(sys.argv[1]), int(sys.argv[2]); print(" ".join(str(i * (n - 1) // (k - 1)) for i in range(k)))' "$1" "$2"
}
flip() {   # in, out, offset, xor
	cp "$1" "$2" && chmod u+w "$2" &&
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); o = int(sys.argv[2]); f.seek(o); b = f.read(1); f.seek(o); f.write(bytes([b[0] ^ int(sys.argv[3])]))' "$2" "$3" "$4"
}
rej_v=0 rej_o=0 tot=0 bad=""
for off in $(offsets "$(size "$IN/small.sbx")" "$CLI_SAMPLES"); do
	tot=$((tot + 1))
	flip "$IN/small.sbx" "$W/b.sbx" "$off" $((1 << (off % 8))) || fail "flip bundle@$off"
	cp "$IN/small.custody" "$W/b.custody"
	"$V" "$W/b.sbx" "${PIN[@]}" --quiet >/dev/null 2>&1
	if [ $? -eq 1 ]; then rej_v=$((rej_v + 1)); else bad="$bad verify@$off"; fi
done
check "sealbox-verify exits 1 on $tot bit flips of the bundle ($rej_v rejected;$bad)" test "$rej_v" -eq "$tot"

tot=0
for target in sbx release; do
	src="$IN/big.$target"
	for off in $(offsets "$(size "$src")" "$CLI_SAMPLES"); do
		tot=$((tot + 1))
		rm -rf "$W/r" && mkdir -p "$W/r"
		cp "$IN/big.sbx" "$W/r/x.sbx" && cp "$IN/big.release" "$W/r/x.release" && chmod u+w "$W/r"/*
		flip "$src" "$W/r/x.$target" "$off" 90 || fail "flip $target@$off"
		"$O" "$W/r/x.sbx" --key "$IN/ada.key" --cert "$IN/ada.pem" "${PIN[@]}" --out "$W/r/out" \
			--quiet >/dev/null 2>&1
		rc=$?
		left=$(find "$W/r" -mindepth 1 ! -name x.sbx ! -name x.release | wc -l)
		if [ "$rc" -eq 1 ] && [ "$left" -eq 0 ]; then
			rej_o=$((rej_o + 1))
		else
			bad="$bad open:$target@$off(exit $rc, $left left)"
		fi
	done
done
check "sealbox-open exits 1 and leaves nothing on $tot byte changes of bundle and release ($rej_o rejected;$bad)" \
	test "$rej_o" -eq "$tot"
rm -rf "$W/r" && mkdir -p "$W/r"
cp "$IN/big.sbx" "$W/r/x.sbx" && cp "$IN/big.release" "$W/r/x.release"
expect_exit 0 "and the untouched release opens" "$O" "$W/r/x.sbx" --key "$IN/ada.key" \
	--cert "$IN/ada.pem" "${PIN[@]}" --out "$W/r/out" --quiet
expect_exit 0 "the untouched log export verifies" "$V" --log "$IN/log.sbxl" "${PIN[@]}" --quiet
head -c $(( $(size "$IN/log.sbxl") - 1 )) "$IN/log.sbxl" > "$W/cut.sbxl"
expect_exit 1 "a log export one byte short is rejected" "$V" --log "$W/cut.sbxl" "${PIN[@]}" --quiet
rm -rf "$W"

done_testing
