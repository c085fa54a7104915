#!/usr/bin/env bash
# Crash-point and I/O-fault campaign (issue 5, "Crash points and I/O faults").
#
# For each operation and each fault kind, runs the real appliance on a real
# swtpm (and the GPIO simulator for release) with tests/faults/faultshim.c
# preloaded, faulting the k-th durable-state call (file writes, syncs,
# renames, unlinks, closes, copies, TPM commands) for k = 1, 2, 3, ... until
# the operation completes without reaching the fault.
#
# Operations: ingest (a new bundle), release (to a recipient, with the
# button pressed on the GPIO simulator), close (a hold close: crypto-erase
# and purge of two bundles), policy (policy set), holdopen (hold open: a
# plain anchored append), checkpoint (log checkpoint), export (log export).
# Fault kinds: kill (SIGKILL at the k-th call), eio and enospc (the k-th
# call fails once), eio-sticky (it and every later one fail), eio-fsync (eio
# on the k-th fsync/fdatasync only), powercut (kill, after undoing every
# unlink and rename whose directory was not fsynced since).
#
# Before every run the box's state directory AND the TPM's state are
# restored from one snapshot (the NV counter matches the database); after
# every run the box is restarted (a read-only and a state-changing command,
# so recovery runs) and checked:
#   - sealbox log verify passes (TPM key, TPM counter vs the log, every
#     signature and root), and no integrity alarm stands (an alarm a
#     recovery raised honestly is shown apart, and still counts);
#   - PRAGMA integrity_check is "ok";
#   - every file in STATE/bundles is a recorded bundle that verifies and
#     decrypts (sealbox bundle verify ID --decrypt); no leftover temp file;
#   - every sealed bundle row has its file and a usable wrapped key, no
#     purged bundle keeps its file, every bundle id a record names has a
#     row, every bundle row has its ingest record, every purged bundle has
#     its purge record, a hold is closed exactly when its bundles are purged;
#   - the TPM NV counter (as log verify reads it) equals the newest head's
#     counter in the database, and the newest head is signed;
#   - the output directory (release) or file (log export) holds only
#     complete files: each X.sbx verifies (sealbox-verify), each X.release
#     opens (sealbox-open, with X.sbx beside it, and a release.confirm
#     record for it in the log), nothing else (no temp files); an X.sbx
#     without its X.release is complete but not openable: counted apart;
#   - an operation that reports success committed its record;
#   - a failed fsync/fdatasync fails the operation with a message (exit
#     status non-zero, stderr non-empty): never retried and trusted.
# Also counted, not as inconsistencies: operations that reported a failure
# although their record had committed (the next start completes them).
#
# usage: campaign.sh [--quick] [--ops "ingest release ..."] [--modes "kill eio ..."]
#                    [--max-k N] [--k "K..."] [--jobs N] [--keep] [--verbose]
# (--k runs only those points: to replay a finding.)
# Env: SBX_BIN (build dir with sealbox, sealbox-verify, sealbox-open,
# sealbox-gpiosim, tests/tools/gen_reads), SBX_FAULTSHIM (the shim .so,
# default $SBX_BIN/faults/faultshim.so), SBX_FAULTS_SEED (quick sampling),
# SBX_FAULTS_QUICK_POINTS (points per operation and kind in quick mode),
# SBX_FAULTS_JOBS (parallel pairs, default nproc), SBX_FAULTS_TMP (work
# directory; default /dev/shm when it exists: crashes and failing calls
# need no real durability, and tmpfs makes each run about 3x faster).
# Output: TAP-like "ok"/"not ok" lines (tests/run.sh counts them), a summary
# table, and every inconsistency with the run directory that shows it.
# Exit status 0 when no inconsistency was found.
set -u
SBX_TOP=${SBX_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
SBX_BIN=${SBX_BIN:-$SBX_TOP/build/release}
. "$SBX_TOP/tests/lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"
export TSS2_LOG=all+none

QUICK=0 KEEP=0 VERBOSE=0 ONLYK= MAXK=${SBX_FAULTS_MAX_K:-20000} JOBS=${SBX_FAULTS_JOBS:-$(nproc)}
OPS="ingest release close policy holdopen checkpoint export"
MODES="kill eio enospc eio-sticky eio-fsync powercut"
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--ops) OPS=$2; shift ;;
	--modes) MODES=$2; shift ;;
	--max-k) MAXK=$2; shift ;;
	--k) ONLYK=$2; shift ;;
	--jobs) JOBS=$2; shift ;;
	--keep) KEEP=1 ;;
	--verbose) VERBOSE=1 ;;
	-h|--help) sed -n '2,60p' "$0"; exit 0 ;;
	*) echo "campaign.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
SEED=${SBX_FAULTS_SEED:-1}
# In quick mode each (operation, fault kind) runs at most this many points,
# chosen among the commit points (renames, journal deletes, syncs, TPM
# commands) and spread over the rest.
QUICK_POINTS=${SBX_FAULTS_QUICK_POINTS:-2}

SB=$SBX_BIN/sealbox
SIM=$SBX_BIN/sealbox-gpiosim
VERIFY=$SBX_BIN/sealbox-verify
OPEN=$SBX_BIN/sealbox-open
SHIM=${SBX_FAULTSHIM:-$SBX_BIN/faults/faultshim.so}
for f in "$SB" "$SIM" "$VERIFY" "$OPEN" "$SBX_BIN/tests/tools/gen_reads" "$SHIM"; do
	[ -e "$f" ] || { echo "campaign.sh: $f missing (make BUILD=... tests faults-bins)" >&2; exit 2; }
done
for c in sqlite3 swtpm openssl setsid cmp; do
	command -v "$c" >/dev/null || { echo "campaign.sh: $c not found" >&2; exit 2; }
done
# An ASan build needs its runtime first in the preload list; it then
# forwards write() and friends to the shim, which forwards them to libc.
PRELOAD=$SHIM
if asan=$(ldd "$SB" 2>/dev/null | awk '/libasan/ { print $3 }') && [ -n "$asan" ]; then
	PRELOAD="$asan:$SHIM"
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
fi

TMPROOT=${SBX_FAULTS_TMP:-}
[ -z "$TMPROOT" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && TMPROOT=/dev/shm
W=$(mktemp -d "${TMPROOT:-${TMPDIR:-/tmp}}/sbx-faults.XXXXXX") || exit 1
SIMPID= PRESSPID= TPMDIR=
cleanup() {
	local d
	stop_sim
	[ -n "$TPMDIR" ] && tpm_down "$TPMDIR"
	# Workers interrupted mid-run leave their swtpm: stop each by its pid.
	for d in "$W"/*/tpm "$W"/tpm0; do
		[ -s "$d/swtpm.pid" ] && tpm_down "$d"
	done
	if [ "$KEEP" = 1 ] || [ -s "$W/failures" ]; then
		echo "# campaign directory kept: $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { [ "$VERBOSE" = 1 ] && echo "# $*"; return 0; }

# --- the TPM: started on a state directory we own, so it can be restored ------------
tpm_up() {   # DIR (holds state/): swtpm on DIR/tpm.sock
	local d=$1 i
	swtpm socket --tpm2 --server "type=unixio,path=$d/tpm.sock" \
		--ctrl "type=unixio,path=$d/tpm.sock.ctrl" --tpmstate "dir=$d/state" \
		--flags not-need-init,startup-clear --daemon --pid "file=$d/swtpm.pid" \
		--log "file=$d/swtpm.log" || return 1
	for ((i = 0; i < 200; i++)); do
		[ -S "$d/tpm.sock" ] && [ -s "$d/swtpm.pid" ] && { TPMDIR=$d; return 0; }
		sleep 0.01
	done
	return 1
}
tpm_down() {   # DIR: stops the swtpm serving DIR; its state is discarded, so no shutdown
	local d=$1 pid i
	pid=$(_swtpm_pid "$d") || { TPMDIR=; return 0; }
	kill -KILL "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do _swtpm_alive "$pid" || break; sleep 0.005; done
	rm -f "$d/swtpm.pid"
	TPMDIR=
}

start_sim() {   # SOCKET
	"$SIM" serve "$1" --quiet & SIMPID=$!
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.01; done
	return 1
}
stop_sim() {
	if [ -n "$PRESSPID" ]; then
		kill -TERM -- "-$PRESSPID" 2>/dev/null
		wait "$PRESSPID" 2>/dev/null
		PRESSPID=
	fi
	if [ -n "$SIMPID" ]; then
		kill -TERM "$SIMPID" 2>/dev/null
		wait "$SIMPID" 2>/dev/null
		SIMPID=
	fi
}

# --- the box everyone starts from -----------------------------------------------------
setup() {
	local S=$W/snap P=$W/pki
	mkdir -p "$S" "$P"
	swtpm_start "$W/tpm0" >/dev/null || { echo "campaign.sh: swtpm does not start" >&2; return 1; }
	export SEALBOX_STATE=$W/state0
	mkca() {
		openssl ecparam -name prime256v1 -genkey -noout -out "$P/$1.key" 2>/dev/null
		openssl req -x509 -new -key "$P/$1.key" -subj "/O=$2/CN=$1" -days 3650 \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign -out "$P/$1.pem" 2>/dev/null
	}
	mkleaf() {
		openssl ecparam -name prime256v1 -genkey -noout -out "$P/$1.key" 2>/dev/null
		openssl req -new -key "$P/$1.key" -subj "/O=$3/CN=$1" -out "$P/$1.csr" 2>/dev/null
		printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,keyAgreement,digitalSignature\n' >"$P/$1.ext"
		openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.pem" -CAkey "$P/$2.key" -CAcreateserial \
			-days 365 -extfile "$P/$1.ext" -out "$P/$1.pem" 2>/dev/null
	}
	mkca prosecutor-ca "Denver DA"
	mkleaf ada prosecutor-ca "Denver DA"
	"$SBX_BIN/tests/tools/gen_reads" --out "$W/ex" --count 3 --seed 7 --format csv --cameras 2 >/dev/null &&
	"$SB" init --operator tech1 >/dev/null &&
	"$SB" trust add --role prosecutor "$P/prosecutor-ca.pem" --operator admin >/dev/null &&
	"$SB" recipient add ada "$P/ada.pem" --role prosecutor --attestation ATT-1 --operator admin >/dev/null &&
	"$SB" hold open C-1 --authority W-1 --purpose criminal-investigation --operator tech1 >/dev/null &&
	"$SB" ingest C-1 "$W/ex/reads.csv" --operator tech1 >/dev/null &&
	"$SB" hold open C-2 --authority W-2 --purpose criminal-investigation --operator tech1 >/dev/null &&
	"$SB" ingest C-2 "$W/ex/reads.csv" --operator tech1 --source a >/dev/null &&
	"$SB" ingest C-2 "$W/ex/reads.csv" --operator tech1 --source b >/dev/null &&
	"$SB" hold open C-3 --authority W-3 --purpose criminal-investigation --operator tech1 >/dev/null &&
	"$SB" identity --out "$W/identity.sbxi" >/dev/null &&
	"$SB" log verify >/dev/null || { echo "campaign.sh: setting up the box failed" >&2; return 1; }
	for id in $(sqlite3 "$SEALBOX_STATE/sealbox.db" 'SELECT id FROM bundles'); do
		"$SB" bundle verify "$id" --decrypt --operator auditor >/dev/null ||
			{ echo "campaign.sh: bundle $id of the snapshot does not verify" >&2; return 1; }
	done
	sqlite3 "$SEALBOX_STATE/sealbox.db" "SELECT id || ' ' || ifnull(hex(wrapped_key), '') FROM bundles" >"$W/snapkeys"
	sed 's/^name = .*/name = denver-2026-faults/' "$SBX_TOP/docs/examples/policy-denver.conf" >"$W/policy-new.conf"
	swtpm_stop "$W/tpm0" >/dev/null 2>&1   # orderly: TPM2_Shutdown, then stop
	cp -a "$W/tpm0/state" "$S/tpm" && cp -a "$W/state0" "$S/state" || return 1
	rm -rf "$W/state0"
	EKCA=$SBX_TEST_EKCA
	unset SEALBOX_STATE SEALBOX_TCTI
}

# --- one run -----------------------------------------------------------------------
# restore RUN: fresh copies of the snapshot, swtpm on them.
restore() {
	local R=$1
	rm -rf "$R"
	mkdir -p "$R/tpm" && cp -a "$W/snap/tpm" "$R/tpm/state" && cp -a "$W/snap/state" "$R/state" || return 1
	tpm_up "$R/tpm" || { echo "campaign.sh: swtpm does not start in $R" >&2; return 1; }
	export SEALBOX_STATE=$R/state SEALBOX_TCTI="swtpm:path=$R/tpm/tpm.sock"
}

# shim MODE K OPCLASS RUN cmd...: runs cmd with the fault shim
shim() {
	local mode=$1 k=$2 cls=$3 R=$4; shift 4
	env LD_PRELOAD="$PRELOAD" SBX_FAULT_OP="$cls" SBX_FAULT_K="$k" SBX_FAULT_MODE="$mode" \
		SBX_FAULT_HIT_FILE="$R/hit" SBX_FAULT_COUNT_FILE="$R/count" \
		${TRACE:+SBX_FAULT_TRACE="$R/trace"} "$@" >>"$R/op.out" 2>&1
}

# op_NAME MODE K CLASS RUN: the operation under test; exit status of the command
op_ingest()     { shim "$1" "$2" "$3" "$4" "$SB" ingest C-3 "$W/ex/reads.csv" --operator tech1; }
op_close()      { shim "$1" "$2" "$3" "$4" "$SB" hold close C-2 --operator tech1; }
op_policy()     { shim "$1" "$2" "$3" "$4" "$SB" policy set "$W/policy-new.conf" --operator admin; }
op_holdopen()   { shim "$1" "$2" "$3" "$4" "$SB" hold open C-9 --authority W-9 \
                       --purpose criminal-investigation --operator tech1; }
op_checkpoint() { shim "$1" "$2" "$3" "$4" "$SB" log checkpoint --operator auditor; }
op_export()     { mkdir -p "$4/out"; shim "$1" "$2" "$3" "$4" "$SB" log export "$4/out/log.sbxl" --operator auditor; }
op_release() {
	local R=$4 rc
	mkdir -p "$R/out"
	start_sim "$R/gpio.sock" || return 99
	# The technician: presses once amber blinks.  A run killed before arming
	# never blinks; the presser is stopped with the simulator.
	setsid bash -c "'$SIM' wait-led '$R/gpio.sock' amber=blink --timeout-ms 15000 >/dev/null 2>&1 &&
		sleep 0.05 && '$SIM' press '$R/gpio.sock' >/dev/null 2>&1" & PRESSPID=$!
	shim "$1" "$2" "$3" "$R" "$SB" release C-1 --to ada --purpose prosecution --authority Order-9 \
		--operator tech1 --out "$R/out" --timeout 15 --gpio "sim:$R/gpio.sock"
	rc=$?
	stop_sim
	return $rc
}

# The record each operation commits (outcome ok), to tell whether it took
# effect: an operation that reports success must have committed it.
event_of() {
	case $1 in
	ingest) echo ingest ;; release) echo release.confirm ;; close) echo hold.close ;;
	policy) echo policy.set ;; holdopen) echo hold.open ;; checkpoint) echo log.checkpoint ;;
	export) echo log.export ;;
	esac
}
committed() {   # OP DB: how many of OP's records the database holds
	sqlite3 "$2" "SELECT count(*) FROM records WHERE event = '$(event_of "$1")' AND outcome = 'ok'" 2>/dev/null
}

# The class of calls each fault kind is injected into.
# eio-fsync is eio on the syncs alone: every fsync/fdatasync fails once,
# and must fail the operation with a message.
class_of() {
	case $1 in
	enospc|enospc-sticky) echo space ;;
	eio-fsync) echo sync ;;
	*) echo all ;;
	esac
}

problem() { echo "$*" >>"$R/problems"; }

# check RUN: the restart and every consistency check; problems to RUN/problems.
check_run() {
	local R=$1 S=$1/state db=$1/state/sealbox.db f id n t kind rest ctr
	local -A sealed=() purged=() confirmed=()
	: >"$R/problems"
	# Restart: a read-only command, then a state-changing one (recovery runs).
	"$SB" hold list >"$R/restart1.out" 2>&1
	"$SB" log checkpoint --operator auditor >"$R/restart2.out" 2>&1
	t=$?
	# Exit 8: the checkpoint was refused under an integrity alarm.
	[ "$t" -eq 8 ] && echo "alarm: $(grep -v '^$' "$R/restart2.out" | head -n 2 | tr '\n' ' ')" >>"$R/alarms"
	[ "$t" -ne 0 ] && [ "$t" -ne 8 ] && problem "restart: log checkpoint fails (exit $t): $(tail -n 1 "$R/restart2.out")"
	if ! "$SB" log verify --json >"$R/verify.out" 2>"$R/verify.err"; then
		problem "log verify fails: $(grep -A3 '"problems"' "$R/verify.out" | tail -n 3 | tr -s ' \n' ' ') $(tail -n 1 "$R/verify.err")"
	fi
	ctr=$(sed -n 's/^ *"counter_tpm": \([0-9]*\).*/\1/p' "$R/verify.out")
	# Everything else from the database in one pass.
	sqlite3 "$db" >"$R/db.out" 2>&1 <<-'SQL'
		SELECT 'ic ' || integrity_check FROM pragma_integrity_check;
		SELECT 'head ' || counter || ' ' || (sig IS NOT NULL) FROM heads ORDER BY tree_size DESC LIMIT 1;
		SELECT 'sealed ' || id || ' ' || ifnull(hex(wrapped_key), '') FROM bundles WHERE state = 'sealed';
		SELECT 'purged ' || id FROM bundles WHERE state = 'purged';
		SELECT 'nobundle ' || id FROM (SELECT DISTINCT bundle_id AS id FROM records WHERE bundle_id != ''
			EXCEPT SELECT id FROM bundles);
		SELECT 'noingest ' || id FROM (SELECT id FROM bundles
			EXCEPT SELECT bundle_id FROM records WHERE event = 'ingest' AND outcome = 'ok');
		SELECT 'nopurge ' || id FROM (SELECT id FROM bundles WHERE state = 'purged'
			EXCEPT SELECT bundle_id FROM records WHERE event = 'purge' AND outcome = 'ok');
		SELECT 'holdstate ' || count(*) FROM bundles b JOIN holds h ON h.case_id = b.case_id
			WHERE (h.state = 'closed') != (b.state = 'purged');
		SELECT 'nokey ' || id FROM bundles WHERE state = 'sealed'
			AND (wrapped_key IS NULL OR wrapped_key = zeroblob(length(wrapped_key)));
		SELECT 'confirm ' || bundle_id FROM records WHERE event = 'release.confirm' AND outcome = 'ok';
		SELECT 'alarmrec ' || count(*) FROM records WHERE event = 'integrity.alarm';
	SQL
	while read -r kind rest; do
		case $kind in
		ic) [ "$rest" = ok ] || problem "PRAGMA integrity_check: $rest" ;;
		head)
			[ "${rest% *}" = "$ctr" ] || problem "TPM counter ${ctr:-?}, newest head anchored at ${rest% *}"
			[ "${rest#* }" = 1 ] || problem "newest tree head unsigned after recovery" ;;
		sealed) sealed[${rest%% *}]=${rest#* } ;;
		purged) purged[$rest]=1 ;;
		nobundle) problem "a record names bundle $rest, which the box does not have" ;;
		noingest) problem "bundle $rest has no ingest record" ;;
		nopurge) problem "purged bundle $rest has no purge record" ;;
		holdstate) [ "$rest" = 0 ] || problem "$rest bundle(s) whose state disagrees with their hold's (closed <=> purged)" ;;
		nokey) problem "sealed bundle $rest has no usable wrapped key" ;;
		confirm) confirmed[$rest]=1 ;;
		alarmrec) [ "$rest" = 0 ] || echo "alarm records: $rest" >>"$R/alarms" ;;
		*) problem "sqlite3: $kind $rest" ;;
		esac
	done <"$R/db.out"
	# Bundles on disk: recorded, sealed, valid; and every sealed one on disk.
	for f in "$S"/bundles/* "$S"/bundles/.[!.]*; do
		[ -e "$f" ] || continue
		n=${f##*/}
		if [[ ! $n =~ ^[0-9a-f]{64}\.sbx$ ]]; then
			problem "stray file in bundles/: $n"
			continue
		fi
		id=${n%.sbx}
		if [ -n "${purged[$id]:-}" ]; then
			problem "purged bundle $id still on disk"
		elif [ -z "${sealed[$id]+x}" ]; then
			problem "bundle file $id has no record"
		elif cmp -s "$f" "$W/snap/state/bundles/$n" && grep -qx "$id ${sealed[$id]}" "$W/snapkeys"; then
			:   # the snapshot's bundle and key, byte for byte: decrypted at setup
		else
			"$SB" bundle verify "$id" --decrypt --operator auditor >"$R/bv.out" 2>&1 ||
				problem "bundle $id on disk does not verify: $(tail -n 1 "$R/bv.out")"
		fi
	done
	for id in "${!sealed[@]}"; do
		[ -f "$S/bundles/$id.sbx" ] || problem "sealed bundle $id is missing its file"
	done
	# Output: complete files only.
	if [ -d "$R/out" ]; then
		for f in "$R"/out/* "$R"/out/.[!.]*; do
			[ -e "$f" ] || continue
			n=${f##*/}
			case $n in
			*.sbx)
				"$VERIFY" "$f" --identity "$W/identity.sbxi" --ek-ca "$EKCA" --quiet >"$R/sv.out" 2>&1 ||
					problem "output $n does not verify: $(tail -n 1 "$R/sv.out")"
				# Complete and verifiable, but not openable: a crash between
				# the two renames.  Reported apart (see the summary).
				[ -f "${f%.sbx}.release" ] || echo "lone $n" >>"$R/notes" ;;
			*.release)
				id=${n%.release}
				rm -rf "$R/opened"
				"$OPEN" "${f%.release}.sbx" --key "$W/pki/ada.key" --cert "$W/pki/ada.pem" \
					--out "$R/opened" --quiet >"$R/so.out" 2>&1 ||
					problem "output $n does not open: $(tail -n 1 "$R/so.out")"
				[ -n "${confirmed[$id]:-}" ] || problem "output $n has no release.confirm record" ;;
			*.sbxl)
				"$VERIFY" --log "$f" --identity "$W/identity.sbxi" --ek-ca "$EKCA" --quiet >"$R/sv.out" 2>&1 ||
					problem "output $n does not verify: $(tail -n 1 "$R/sv.out")" ;;
			*) problem "partial file in the output directory: $n" ;;
			esac
		done
	fi
}

# --- the campaign --------------------------------------------------------------------
# count_points OP: a fault-free run with the trace on: the number of
# matching calls per class goes to $W/count.OP.CLASS, the trace is kept.
count_points() {
	local op=$1 R=$W/count-$op rc cls
	restore "$R" || return 1
	TRACE=1 "op_$op" kill 0 all "$R" >"$R/op.sh" 2>&1
	rc=$?
	tpm_down "$R/tpm"
	[ "$rc" -eq 0 ] || { echo "campaign.sh: $op fails without faults (exit $rc): $(tail -n 2 "$R/op.out")" >&2; return 1; }
	cp "$R/trace" "$W/trace.$op"
	for cls in all space sync; do
		in_class "$cls" <"$R/trace" | wc -l >"$W/count.$op.$cls"
	done
	rm -rf "$R"
}
in_class() {   # CLASS: filters trace lines to the calls of CLASS
	awk -v cls="$1" 'cls == "all" ||
		(cls == "space" && $2 ~ /^(write|pwrite|pwrite64|writev|copy_file_range|fsync|fdatasync|rename|renameat|renameat2)$/) ||
		(cls == "sync" && $2 ~ /^(fsync|fdatasync)$/)'
}

# quick_ks OP MODE: a few k for quick mode, from the fault-free trace:
# commit points (renames, journal deletes, syncs, TPM commands, copies)
# and one anywhere, chosen by the seed, so modes hit different ones.
quick_ks() {
	local op=$1 mode=$2 cls n salt q=$QUICK_POINTS
	cls=$(class_of "$mode")
	n=$(cat "$W/count.$op.$cls")
	[ "$n" -gt 0 ] || return 0
	# kill and eio carry the most distinct failure paths; the others get
	# one point less (at least one).
	case $mode in kill|eio) ;; *) [ "$q" -gt 1 ] && q=$((q - 1)) ;; esac
	salt=$(printf '%s' "$op$mode$SEED" | cksum | cut -d' ' -f1)
	{
		in_class "$cls" <"$W/trace.$op" | awk '{ k++; if ($2 ~ /rename|unlink|sync|tpm|copy/) print k }' |
		awk -v s="$salt" -v q="$q" '{ a[NR] = $1 } END {
			if (NR == 0) exit; srand(s);
			for (i = 0; i < q && i < 1; i++) print a[int(rand() * NR) + 1] }'
		[ "$q" -gt 1 ] && for ((i = 1; i < q; i++)); do echo $(( ((salt / i) % n) + 1 )); done
	} | sort -n | uniq
}

# run_point OP MODE K RUNDIR: one run and its checks.  Returns 1 when the
# fault was not reached (the operation completed first), 0 otherwise.
# Appends to RUNDIR.result: "points", "bad", "alarm", "sync" lines.
run_point() {
	local op=$1 mode=$2 k=$3 R=$4 cls rc hitline res=$4.result now before
	cls=$(class_of "$mode")
	restore "$R" || { echo "bad" >>"$res"; echo "== $op $mode k=$k: restore failed" >>"$R.failures"; return 1; }
	"op_$op" "${mode%-fsync}" "$k" "$cls" "$R" >"$R/op.sh" 2>&1
	rc=$?
	hitline=$(grep -v '^resync\|^undo' "$R/hit" 2>/dev/null | head -n 1)
	if [ -z "$hitline" ]; then
		tpm_down "$R/tpm"
		if [ "$rc" -ne 0 ]; then
			echo "bad" >>"$res"
			echo "== $op $mode k=$k: no fault reached, yet the operation failed (exit $rc): $(tail -n 1 "$R/op.out")" >>"$R.failures"
		fi
		return 1
	fi
	echo "points" >>"$res"
	# Before the restart (sqlite3 rolls a hot journal back, as the box would).
	now=$(committed "$op" "$R/state/sealbox.db")
	before=$(committed "$op" "$W/snap/state/sealbox.db")
	check_run "$R"
	if [ "$rc" -eq 0 ] && [ "$now" = "$before" ]; then
		problem "the operation reported success but committed no $(event_of "$op") record"
	elif [ "$rc" -ne 0 ] && [ "$rc" -ne 137 ] && [ "$now" != "$before" ]; then
		# Reported failed, yet in force (rolled forward at the next start).
		echo "committed $rc $(grep -v '^$' "$R/op.out" | tail -n 1)" >>"$res"
	fi
	# A failed sync must fail the operation, with a message.
	case "$mode:$hitline" in
	kill:*|powercut:*) ;;
	*" fsync "*|*" fdatasync "*)
		echo "sync" >>"$res"
		if [ "$rc" -eq 0 ]; then
			problem "a failed ${hitline#* } was ignored: the operation succeeded"
		elif ! [ -s "$R/op.out" ]; then
			problem "a failed ${hitline#* } failed the operation without a message"
		else
			echo "syncmsg $(grep -v '^$' "$R/op.out" | tail -n 1)" >>"$res"
		fi ;;
	esac
	[ -s "$R/notes" ] && echo "lone" >>"$res"
	if [ -s "$R/alarms" ]; then
		echo "alarm" >>"$res"
		problem "integrity alarm after recovery: $(cat "$R/alarms")"
	fi
	if [ -s "$R/problems" ]; then
		echo "bad" >>"$res"
		{
			echo "== $op $mode k=$k: fault at [$hitline], operation exit $rc: $(grep -v '^$' "$R/op.out" | tail -n 1)"
			sed 's/^/   - /' "$R/problems"
			grep '^resync' "$R/hit" | sed 's/^/   (later sync of the same file: /; s/$/)/'
			grep '^undo' "$R/hit" | sed 's/^/   (power cut: /; s/$/)/' 
		} >>"$R.failures"
		[ "$KEEP" = 1 ] && cp -a "$R" "$W/fail-$op-$mode-$k"
		log "inconsistency: $op $mode k=$k"
	fi
	tpm_down "$R/tpm"
	return 0
}

# pair OP MODE: every point (or the quick sample) of one operation and kind.
pair() {
	local op=$1 mode=$2 R=$W/run-$1-$2 k
	: >"$R.result"
	if [ -n "$ONLYK" ]; then
		for k in $ONLYK; do
			run_point "$op" "$mode" "$k" "$R"
		done
	elif [ "$QUICK" = 1 ]; then
		for k in $(quick_ks "$op" "$mode"); do
			run_point "$op" "$mode" "$k" "$R"
		done
	else
		k=1
		while [ "$k" -le "$MAXK" ]; do
			run_point "$op" "$mode" "$k" "$R" || break
			k=$((k + 1))
		done
		if [ "$k" -gt "$MAXK" ]; then
			echo "bad" >>"$R.result"
			echo "== $op $mode: still reaching faults at k=$MAXK" >>"$R.failures"
		fi
	fi
	rm -rf "$R"
}

setup || exit 1
START=$(date +%s)
PAIRS=()
for op in $OPS; do
	if count_points "$op"; then
		for mode in $MODES; do PAIRS+=("$op $mode"); done
	else
		fail "$op runs without faults"
		echo "== $op fails without faults" >>"$W/failures"
	fi
done
# A small job pool: each (operation, kind) pair in its own directories,
# with its own swtpm and GPIO simulator.
running=0
for p in "${PAIRS[@]}"; do
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
	pair $p &
	running=$((running + 1))
done
wait
END=$(date +%s)

total_bad=0
printf '# %-11s %-11s %6s %7s %6s %7s %7s %6s\n' operation fault calls points syncs failed* alarms bad >"$W/table"
for p in "${PAIRS[@]}"; do
	set -- $p
	res=$W/run-$1-$2.result
	np=$(grep -c '^points$' "$res")
	nb=$(grep -c '^bad$' "$res")
	na=$(grep -c '^alarm$' "$res")
	ns=$(grep -c '^sync$' "$res")
	nc=$(grep -c '^committed ' "$res")
	total_bad=$((total_bad + nb))
	printf '# %-11s %-11s %6s %7s %6s %7s %7s %6s\n' "$1" "$2" "$(cat "$W/count.$1.$(class_of "$2")")" \
		"$np" "$ns" "$nc" "$na" "$nb" >>"$W/table"
	grep '^committed ' "$res" | cut -d' ' -f2- | sed "s/^/$1 $2: exit /" >>"$W/committed"
	nl=$(grep -c '^lone$' "$res")
	[ "$nl" -gt 0 ] && echo "# $1 / $2: $nl point(s) left a complete X.sbx without its X.release (crash between the two renames)" >>"$W/lone"
	if [ "$nb" -eq 0 ]; then
		ok "$1 / $2: $np fault points, 0 inconsistencies"
	else
		fail "$1 / $2: $np fault points, $nb inconsistent"
	fi
	[ -s "$W/run-$1-$2.failures" ] && cat "$W/run-$1-$2.failures" >>"$W/failures"
	grep '^syncmsg ' "$res" | cut -d' ' -f2- >>"$W/syncmsgs"
done
echo "#"
cat "$W/table"
echo "# calls: matching calls in a fault-free run; points: k enumerated (fault reached);"
echo "# syncs: points that failed an fsync/fdatasync; failed*: the operation reported"
echo "# failure yet its record had committed (in force after the next start);"
echo "# alarms: integrity alarms after recovery; bad: runs with an inconsistency."
[ -s "$W/lone" ] && cat "$W/lone"
if [ -s "$W/committed" ]; then
	echo "# reported failed, yet committed (distinct messages):"
	sed -E 's#/[^ ]*/(run-[^/ ]*)#...#g' "$W/committed" | sort | uniq -c | sort -rn | head -n 20 | sed 's/^/#   /'
fi
if [ -s "$W/syncmsgs" ]; then
	echo "# messages when an fsync/fdatasync failed (distinct):"
	sed -E 's#/[^ ]*/(run-[^/ ]*)#...#g' "$W/syncmsgs" | sort | uniq -c | sort -rn | head -n 20 | sed 's/^/#   /'
fi
echo "# $((END - START)) s, $([ "$QUICK" = 1 ] && echo quick || echo full) campaign, $JOBS jobs"
if [ -s "$W/failures" ]; then
	echo "# inconsistencies (first 200 lines of $W/failures):"
	head -n 200 "$W/failures" | sed 's/^/#   /'
fi
done_testing
[ "$total_bad" -eq 0 ] && ! [ -s "$W/failures" ]
