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
	# the --no-memo cross-check and the log sample for the real sealbox-verify
	NOMEMO_BITS=499 NOMEMO_BYTES=997 NOMEMO_LOG=13 SAVE_LOG=29 SAVE_CUT=4999
	# ASan+UBSan (make asan) runs 3-4x slower: a third of the sample.
	if [ "${SANITIZE:-0}" = 1 ]; then
		STEP_BITS=293 STEP_BYTES=631 STEP_LOG=19 STEP_CUT=37
		NOMEMO_BITS=1499 NOMEMO_BYTES=2999 NOMEMO_LOG=37 SAVE_LOG=79
	fi
	;;
full)
	IN="$SBX_TOP/$BUILD/tamper-inputs"
	SIZES="65536 1048576 10000"
	STEP_BITS=1 STEP_BYTES=1 STEP_LOG=1 STEP_CUT=1 CLI_SAMPLES=100
	NOMEMO_BITS=97 NOMEMO_BYTES=1009 NOMEMO_LOG=97 SAVE_LOG=997 SAVE_CUT=99991
	;;
*)
	echo "usage: tamper.sh quick|full" >&2
	exit 2
	;;
esac

[ -x "$F" ] || { fail "flipper is built ($F)"; done_testing; exit 1; }
T0=$(date +%s)
echo "# tamper.sh $MODE: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
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
	[ "$MODE" = full ] && printf '%s\n' "$out" | grep -v '^campaign ' | sed 's/^/# /' 
	while IFS= read -r line; do
		case $line in
		"campaign "*)
			n=$((n + 1))
			if [[ $line =~ ,\ 0\ accepted,\ 0\ left ]] && [[ ! $line =~ \ 0\ mutations ]] &&
			   [[ ! $line =~ INCOMPLETE ]]; then
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

# The memo cross-check: a sample of each campaign with every signature
# verified by OpenSSL (--no-memo).  Same verdicts, or the memo is wrong.
campaigns "no memo" bits "$IN/small.sbx" --custody "$IN/small.custody" "${PIN[@]}" \
	--step "$NOMEMO_BITS" --no-memo
campaigns "no memo" bytes "$IN/big.sbx" "$IN/big.release" --key "$IN/ada.key" \
	--cert "$IN/ada.pem" "${PIN[@]}" --scratch "$IN/scratch" --step "$NOMEMO_BYTES" --no-memo
campaigns "no memo" log "$IN/log.sbxl" "${PIN[@]}" --step "$NOMEMO_LOG" --no-memo

# --- the real programs, on a sample ------------------------------------------------
V="$SBX_BIN/sealbox-verify"
O="$SBX_BIN/sealbox-open"
W="$IN/cli"
mkdir -p "$W"
size() { stat -c %s "$1"; }
# Offsets spread over the whole file, the first and last byte included.
offsets() {   # file size, count
	local i
	for ((i = 0; i < $2; i++)); do echo $((i * ($1 - 1) / ($2 - 1))); done
}
# (Shell and coreutils, not python: starting python costs a second here.)
flip() {   # in, out, offset, xor
	local b
	cp "$1" "$2" && chmod u+w "$2" &&
	b=$(od -An -tu1 -j "$3" -N1 "$2") && [ -n "$b" ] &&
	printf "\\$(printf %o $((b ^ $4)))" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none &&
	! cmp -s "$1" "$2"
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

# The log mutations: a sample of each kind, written out by the flipper
# exactly as it verified them, through the real sealbox-verify.  A rollback
# is checked as the flipper did: against the original (--since).
mkdir -p "$W/logs"
for kind in modify delete insert swap duplicate truncate-records rollback truncate-bytes; do
	step=$SAVE_LOG
	[ "$kind" = truncate-bytes ] && step=$SAVE_CUT
	"$F" log "$IN/log.sbxl" "${PIN[@]}" --save "$W/logs" --step "$step" --only "$kind" \
		>/dev/null 2>&1
done
tot=0 rej=0 bad="" kinds=""
for f in "$W"/logs/*.sbxl; do
	[ -f "$f" ] || continue
	k=$(basename "$f" .sbxl)
	k=${k%-*}
	case " $kinds " in *" $k "*) ;; *) kinds="$kinds $k" ;; esac
	since=()
	[ "$k" = rollback ] && since=(--since "$IN/log.sbxl")
	tot=$((tot + 1))
	"$V" --log "$f" "${since[@]}" "${PIN[@]}" --quiet >/dev/null 2>&1
	rc=$?
	if [ "$rc" -eq 1 ]; then rej=$((rej + 1)); else bad="$bad $(basename "$f")(exit $rc)"; fi
done
check "sealbox-verify --log exits 1 on $tot mutated exports of 8 kinds ($rej rejected; kinds:$kinds;$bad)" \
	test "$tot" -gt 0 -a "$rej" -eq "$tot" -a "$(wc -w <<<"$kinds")" -eq 8
rm -rf "$W"

echo "# tamper.sh $MODE: $(( $(date +%s) - T0 )) s wall, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
done_testing
