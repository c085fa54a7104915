# Sourced by the CLI test scripts.  Reporting in the same TAP-like lines as
# the unit tests; the scripts never stop at the first failure.
set -u
SBX_BIN=${SBX_BIN:-$PWD/build/release}
SBX_TOP=${SBX_TOP:-$PWD}
export TSS2_LOG=${TSS2_LOG:-all+none}
__n=0
__failed=0

ok()   { __n=$((__n + 1)); echo "ok $__n - $*"; }
fail() { __n=$((__n + 1)); __failed=$((__failed + 1)); echo "not ok $__n - $*"; }
check() {   # description, command...: passes when the command succeeds
	local d=$1; shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}
# expect_exit CODE description command...: runs the command, captures its
# stdout/stderr in $OUT/$ERR and passes when it exits with CODE.
expect_exit() {
	local want=$1 d=$2; shift 2
	local o e rc
	o=$(mktemp) e=$(mktemp)
	"$@" >"$o" 2>"$e"; rc=$?
	OUT=$(cat "$o"); ERR=$(cat "$e"); rm -f "$o" "$e"
	if [ "$rc" -eq "$want" ]; then ok "$d"; else fail "$d (exit $rc, want $want; stderr: $(printf '%s' "$ERR" | head -c 300))"; fi
}
# faultshim_preload PROGRAM: sets PRELOAD to what loads the fault shim
# (tests/faults/faultshim.c) into PROGRAM.  An ASan build needs its runtime
# first in the list; it then forwards write() and friends to the shim.
faultshim_preload() {
	local shim=${SBX_FAULTSHIM:-$SBX_BIN/faults/faultshim.so} asan
	PRELOAD=$shim
	if asan=$(ldd "$1" 2>/dev/null | awk '/libasan/ { print $3 }') && [ -n "$asan" ]; then
		PRELOAD="$asan:$shim"
		export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
	fi
}
done_testing() {
	echo "# $__n checks, $__failed failed"
	[ "$__failed" -eq 0 ]
}
