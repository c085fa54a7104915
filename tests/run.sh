#!/usr/bin/env bash
# Runs the whole suite: every unit test program (under a fresh swtpm when it
# says "needs: swtpm"), then every CLI test script.  Prints one line per
# check and closes with "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
export BUILD
export SBX_BIN="$PWD/$BUILD"
export SBX_TOP="$PWD"
export TSS2_LOG=${TSS2_LOG:-all+none}
only=${TESTS:-}
# Under the sanitizers the 1.2 GB round trip runs at a tenth of the size: the
# full one runs in the plain build.
if [ "${SANITIZE:-0}" = 1 ]; then
	export SBX_ROUNDTRIP_READS=${SBX_ROUNDTRIP_READS:-1000}
fi

passed=0 failed=0
logdir=$(mktemp -d "${TMPDIR:-/tmp}/sbx-run.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

run_one() {   # name, command...
	local name=$1; shift
	local out="$logdir/$name.out" rc p f
	"$@" >"$out" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$out")
	f=$(grep -c '^not ok ' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited $rc without reporting a failed check" >>"$out"
		f=1
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name ran no check" >>"$out"
		f=1
	fi
	passed=$((passed + p)); failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		echo "FAIL $name ($p passed, $f failed)"
		grep -v '^ok ' "$out" | tail -n 40 | sed 's/^/    /'
	else
		echo "PASS $name ($p checks)"
	fi
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	[ -n "$only" ] && [[ ! " $only " == *" $name "* ]] && continue
	if grep -q 'needs: swtpm' "tests/unit/$name.c" 2>/dev/null; then
		run_one "$name" tests/lib/with-swtpm.sh "$t"
	else
		run_one "$name" "$t"
	fi
done

for t in "$BUILD"/fuzz-replay/fuzz_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	[ -n "$only" ] && [[ ! " $only " == *" $name "* ]] && continue
	corpus=tests/fuzz/corpus/$name
	if [ -d "$corpus" ]; then run_one "replay-$name" "$t" "$corpus"; else run_one "replay-$name" "$t"; fi
done

for t in tests/cli/*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	[ -n "$only" ] && [[ ! " $only " == *" $name "* ]] && continue
	run_one "$name" bash "$t"
done

# The reduced campaigns of issue 5 (the full ones: make faults, make tamper):
# crash points and I/O faults at a sample of points per operation and fault
# kind.  Not under SANITIZE=1: the campaign runs hundreds of box commands,
# and the sanitizers already see the same code paths in tests/cli
# (crash_regress.sh runs the fault shim under both builds).
# Tamper: a sample of the flips and log mutations (the same reasoning for
# SANITIZE=1).  Hardening: every installed binary, and the parser child's
# seccomp allowlist, in both builds (binaries.sh says what does not apply
# to a sanitizer build).
want() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }
if [ "${SANITIZE:-0}" != 1 ]; then
	want faults-quick && run_one faults-quick bash tests/faults/campaign.sh --quick
	want tamper-quick && run_one tamper-quick bash tests/tamper/tamper.sh quick
fi
want harden-binaries && run_one harden-binaries env SANITIZE="${SANITIZE:-0}" RELEASE="${RELEASE:-0}" \
	bash tests/harden/binaries.sh
want harden-seccomp && run_one harden-seccomp env SANITIZE="${SANITIZE:-0}" bash tests/harden/seccomp.sh

# The hardware-in-the-loop test (images/testvm, make vm-test): the libgpiod and
# /dev/tpmrm0 backends on a real kernel under qemu.  Only where qemu is
# installed, and not under SANITIZE=1 (the binary goes into the VM as built).
if command -v qemu-system-x86_64 >/dev/null && [ "${SANITIZE:-0}" != 1 ]; then
	if [ -z "$only" ] || [[ " $only " == *" vm-test "* ]]; then
		run_one vm-test bash images/testvm/run.sh
	fi
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
