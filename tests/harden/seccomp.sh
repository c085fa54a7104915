#!/usr/bin/env bash
# The ingest parser child runs under the seccomp allowlist of
# appliance/seccomp.h: every allowed call the ingest needs works (CSV with
# images beside it, tar.gz, zip), each forbidden one kills the child, and
# then the ingest fails cleanly (exit 7, "the parser died (signal 31)"):
# nothing sealed, the failure logged with its reason, the log still
# verifies.  The forbidden calls are made through the test-only
# SEALBOX_TEST_SANDBOX_PROBE hook (absent from release builds).
. "$(dirname "$0")/../lib/common.sh"
. "$SBX_TOP/tests/lib/swtpm.sh"

P="$SBX_BIN/tests/harden/test_seccomp"
if [ -x "$P" ]; then
	"$P" || true    # its own ok/not ok lines
else
	fail "test_seccomp is built ($P)"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-seccomp.XXXXXX")
trap 'swtpm_stop "$T/tpm" >/dev/null 2>&1; rm -rf "$T"' EXIT
swtpm_start "$T/tpm" || { fail "swtpm starts"; done_testing; exit 1; }
SB="$SBX_BIN/sealbox"
GEN="$SBX_BIN/tests/tools/gen_reads"
S="$T/state"
export SEALBOX_STATE="$S"

"$SB" init --operator tech1 >/dev/null || fail "init"
"$SB" hold open C-1 --authority W-1 --purpose criminal-investigation --operator tech1 >/dev/null || fail "hold open"
"$GEN" --out "$T/ex1" --count 12 --seed 1 --format csv >/dev/null || fail "gen csv"
"$GEN" --out "$T/ex2" --count 9 --seed 2 --format jsonl --archive tar.gz >/dev/null || fail "gen tar.gz"
"$GEN" --out "$T/ex3" --count 7 --seed 3 --format csv --archive zip >/dev/null || fail "gen zip"
CSV=$(ls "$T"/ex1/*.csv | head -n 1)
TGZ=$(ls "$T"/ex2/*.tar.gz | head -n 1)
ZIP=$(ls "$T"/ex3/*.zip | head -n 1)

state_files() { (cd "$S" && find bundles -type f 2>/dev/null | sort; sqlite3 sealbox.db 'SELECT count(*) FROM bundles'); }
failed_ingests() { "$SB" log show --json | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r["event"] == "ingest" and r["outcome"] == "failed"))'; }

# Everything an ingest needs is on the list: images opened beside a CSV
# (openat2), gzip, zip times (mktime without /etc/localtime).
expect_exit 0 "under the filter: CSV with images" "$SB" ingest C-1 "$CSV" --operator tech1
expect_exit 0 "under the filter: tar.gz of JSON Lines" "$SB" ingest C-1 "$TGZ" --operator tech1
expect_exit 0 "under the filter: zip" "$SB" ingest C-1 "$ZIP" --operator tech1

if ! grep -q SEALBOX_TEST_SANDBOX_PROBE "$SB"; then
	# A release build has no probe hook: the variable must change nothing.
	SEALBOX_TEST_SANDBOX_PROBE=open expect_exit 0 "release build: the probe variable is ignored" \
		"$SB" ingest C-1 "$CSV" --operator tech1
	done_testing
	exit
fi
for probe in open socket execve; do
	before=$(state_files)
	nfail=$(failed_ingests)
	SEALBOX_TEST_SANDBOX_PROBE=$probe expect_exit 7 "a forbidden $probe() in the parser fails the ingest" \
		"$SB" ingest C-1 "$CSV" --operator tech1
	case $ERR in
	*"signal 31"*) ok "the error names the kill by SIGSYS ($probe)" ;;
	*) fail "the error names the kill by SIGSYS ($probe): $ERR" ;;
	esac
	check "nothing sealed after the $probe() kill" test "$before" = "$(state_files)"
	check "the failure is logged ($probe)" test "$(failed_ingests)" -eq $((nfail + 1))
	check "the logged reason names the dead parser ($probe)" sh -c \
		"'$SB' log show --json | grep -q 'parser died (signal 31)'"
done
check "no temporary file left in the bundles directory" sh -c "! ls -A '$S/bundles' | grep -q tmp"
expect_exit 0 "log verify after the kills" "$SB" log verify
expect_exit 0 "and ingest works again without the probe" "$SB" ingest C-1 "$CSV" --operator tech1

done_testing
