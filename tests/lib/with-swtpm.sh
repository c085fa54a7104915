#!/usr/bin/env bash
# with-swtpm.sh CMD ARGS...: runs CMD against a fresh swtpm in a temporary
# directory (SEALBOX_TCTI, SBX_TEST_EKCA and SBX_SWTPM_DIR set), then shuts
# the TPM down, stops swtpm and removes the directory, also when interrupted.
# Exits with CMD's status (128+N if killed by signal N).
set -u
[ $# -ge 1 ] || { echo "usage: with-swtpm.sh CMD [ARGS...]" >&2; exit 2; }
. "$(dirname "$0")/swtpm.sh"

__dir=$(mktemp -d "${TMPDIR:-/tmp}/sbx-swtpm.XXXXXX") || exit 1
__child=
__cleaned=0

__cleanup() {
	[ "$__cleaned" -eq 1 ] && return
	__cleaned=1
	swtpm_stop "$__dir"
	rm -rf "$__dir"
}

__on_signal() {   # signal number
	trap '' INT TERM HUP
	if [ -n "$__child" ]; then
		# TERM whatever arrived: a background job of a non-interactive
		# shell starts with SIGINT ignored, so forwarding INT would hang.
		kill -TERM "$__child" 2>/dev/null
		wait "$__child" 2>/dev/null
	fi
	__cleanup
	exit $((128 + $1))
}

trap '__cleanup' EXIT
trap '__on_signal 2' INT
trap '__on_signal 15' TERM
trap '__on_signal 1' HUP

swtpm_start "$__dir" || exit 1

# In the background so a signal runs the trap at once instead of after CMD
# ends; stdin is passed on explicitly (a background job would get /dev/null)
# unless there is none (CI may run with stdin closed).
if { : <&0; } 2>/dev/null; then
	"$@" <&0 &
else
	"$@" </dev/null &
fi
__child=$!
wait "$__child"
rc=$?
__child=
__cleanup
exit "$rc"
