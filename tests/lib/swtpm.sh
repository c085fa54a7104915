# Sourced bash library: a fresh swtpm (a real software TPM 2.0, never a
# mock) for one test run.
#
#   swtpm_start DIR   a fresh TPM state in DIR/state with EK and platform
#                     certificates issued by a test-local CA (see
#                     _swtpm_manufacture), swtpm on DIR/tpm.sock, waits until
#                     it answers.
#                     Exports SEALBOX_TCTI, SBX_TEST_EKCA, SBX_SWTPM_DIR.
#   swtpm_stop DIR    TPM2_Shutdown(CLEAR), stop swtpm, wait until it is gone.
#
# The test CA (root + intermediate, as swtpm_localca makes them) and a
# manufactured template state are created once and cached under
# ${SBX_TEST_CACHE:-$SBX_TOP/build/test-cache}/swtpm-ca.
# Nothing here reads or writes /etc or /var/lib/swtpm-localca: every
# swtpm_setup call gets an explicit --config inside the cache.
#
# Works as root and as an ordinary user.  Functions return non-zero with one
# line on stderr on failure; they never exit the sourcing shell.

: "${SBX_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export TSS2_LOG=${TSS2_LOG:-all+none}

_swtpm_err() { echo "swtpm: $*" >&2; }

# Cache directory holding the CA and the swtpm_setup configuration that
# points at it.  XDG_CONFIG_HOME is how swtpm_setup is told where to write
# its config files; the CA's state dir lands at $ca/var/lib/swtpm-localca.
# Absolute, because swtpm_setup writes it into the config files.
_swtpm_ca_dir() {
	local ca=${SBX_TEST_CACHE:-$SBX_TOP/build/test-cache}/swtpm-ca
	mkdir -p "$ca" && (cd "$ca" && pwd)
}

# Makes the configuration files (cheap) if absent.  Caller holds the lock.
_swtpm_ca_config() {
	local ca=$1
	[ -s "$ca/swtpm_setup.conf" ] && [ -s "$ca/swtpm-localca.conf" ] && return 0
	# "root" lets it write the files when run as root; harmless otherwise.
	if ! XDG_CONFIG_HOME=$ca swtpm_setup --create-config-files overwrite,root \
	     >"$ca/config.log" 2>&1; then
		_swtpm_err "swtpm_setup --create-config-files failed: $(tail -n 1 "$ca/config.log")"
		return 1
	fi
	# Refuse a config that would use the system CA after all.
	if ! grep -q "^statedir = $ca/var/lib/swtpm-localca\$" "$ca/swtpm-localca.conf"; then
		_swtpm_err "unexpected CA state dir in $ca/swtpm-localca.conf"
		return 1
	fi
}

# Runs swtpm_setup into state dir $2 with the cached CA config in $1.
_swtpm_setup() {
	local ca=$1 state=$2 log=$3
	mkdir -p "$state" || return 1
	if ! swtpm_setup --tpm2 --create-ek-cert --create-platform-cert \
	     --tpmstate "$state" --config "$ca/swtpm_setup.conf" \
	     --overwrite >"$log" 2>&1; then
		_swtpm_err "swtpm_setup failed (log $log): $(grep -i error "$log" | tail -n 1)"
		return 1
	fi
}

# Manufactures DIR/state.  swtpm_setup costs about 1 s (the TPM generates
# an RSA-2048 and a P-384 EK), so by default one manufactured, never-started
# state is cached as a template and each start gets a fresh copy of it: no
# keys, counters or lockout state carry over between runs, and the TPM's
# random generator is reseeded on every start (two copies create different
# keys).  Copies share the EK and its certificates; set SBX_SWTPM_FRESH=1
# to manufacture every state from scratch instead.
#
# The first run creates the CA (swtpm_localca makes root + intermediate on
# first use) and the template under an exclusive lock, so concurrent first
# runs make only one; later runs take the lock shared.
_swtpm_manufacture() {
	local dir=$1 ca lca tpl
	ca=$(_swtpm_ca_dir) || return 1
	lca="$ca/var/lib/swtpm-localca"
	tpl="$ca/template/tpm2-00.permall"
	mkdir -p "$dir/state" || return 1
	(
		# A template older than the swtpm binary is remade.
		if [ -s "$ca/ekca.pem" ] && [ "$tpl" -nt "$(command -v swtpm)" ]; then
			flock -s 9 || exit 1
		else
			flock -x 9 || exit 1
		fi
		_swtpm_ca_config "$ca" || exit 1
		if [ "${SBX_SWTPM_FRESH:-0}" = 1 ]; then
			_swtpm_setup "$ca" "$dir/state" "$dir/setup.log" || exit 1
		else
			if ! [ -s "$tpl" ] || ! [ "$tpl" -nt "$(command -v swtpm)" ]; then
				rm -rf "$ca/template" "$ca/template.tmp"
				_swtpm_setup "$ca" "$ca/template.tmp" "$ca/template-setup.log" || exit 1
				mv "$ca/template.tmp" "$ca/template" || exit 1
			fi
			cp "$ca/template/tpm2-00.permall" "$dir/state/" || exit 1
		fi
		if [ ! -s "$ca/ekca.pem" ]; then
			[ -s "$lca/swtpm-localca-rootca-cert.pem" ] && [ -s "$lca/issuercert.pem" ] || {
				_swtpm_err "CA files missing under $lca"; exit 1; }
			cat "$lca/swtpm-localca-rootca-cert.pem" "$lca/issuercert.pem" \
				>"$ca/ekca.pem.tmp" && mv -f "$ca/ekca.pem.tmp" "$ca/ekca.pem" || exit 1
		fi
	) 9>>"$ca/.lock"
}

# 0 if PID is a live (not zombie) process.  A daemonised swtpm is
# re-parented; until something reaps it, it lingers as a zombie that
# `kill -0` still reports alive.
_swtpm_alive() {
	local pid=$1 stat
	[ -n "$pid" ] || return 1
	# Builtins only: this runs in a polling loop.
	read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
	stat=${stat##*) }        # field 3 follows the ")" closing comm
	[ "${stat%% *}" != "Z" ]
}

_swtpm_pid() {   # prints the pid from DIR/swtpm.pid if it is our swtpm
	local dir=$1 pid args
	read -r pid 2>/dev/null <"$dir/swtpm.pid" || [ -n "$pid" ] || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# Guard against pid reuse: it must be swtpm serving this directory.
	mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
	[[ " ${args[*]} " == *"path=$dir/tpm.sock "* ]] || return 1
	echo "$pid"
}

swtpm_start() {
	local dir=${1:?swtpm_start DIR}
	local tcti i cmd
	mkdir -p "$dir" || return 1
	dir=$(cd "$dir" && pwd) || return 1
	for cmd in swtpm swtpm_setup tpm2_getcap tpm2_shutdown flock; do
		command -v "$cmd" >/dev/null || { _swtpm_err "$cmd not found (run tests/lib/deps.sh)"; return 1; }
	done
	_swtpm_manufacture "$dir" || return 1
	if ! swtpm socket --tpm2 \
	     --server "type=unixio,path=$dir/tpm.sock" \
	     --ctrl "type=unixio,path=$dir/tpm.sock.ctrl" \
	     --tpmstate "dir=$dir/state" \
	     --flags not-need-init,startup-clear \
	     --log "file=$dir/swtpm.log" \
	     --daemon --pid "file=$dir/swtpm.pid"; then
		_swtpm_err "swtpm did not start (log $dir/swtpm.log)"
		return 1
	fi
	tcti="swtpm:path=$dir/tpm.sock"
	for ((i = 0; i < 200; i++)); do
		if tpm2_getcap -T "$tcti" properties-fixed >/dev/null 2>&1; then
			export SEALBOX_TCTI=$tcti
			export SBX_TEST_EKCA
			SBX_TEST_EKCA="$(_swtpm_ca_dir)/ekca.pem"
			export SBX_SWTPM_DIR=$dir
			return 0
		fi
		sleep 0.02
	done
	_swtpm_err "swtpm on $dir/tpm.sock did not answer within 4 s"
	swtpm_stop "$dir"
	return 1
}

swtpm_stop() {
	local dir=${1:?swtpm_stop DIR}
	local pid i
	dir=$(cd "$dir" 2>/dev/null && pwd) || return 0
	pid=$(_swtpm_pid "$dir") || return 0
	_swtpm_alive "$pid" || return 0
	# An orderly shutdown: without it the next start counts an unclean stop
	# towards dictionary-attack lockout.  Best effort; swtpm may be wedged.
	timeout 5 tpm2_shutdown -c -T "swtpm:path=$dir/tpm.sock" >/dev/null 2>&1 ||
		_swtpm_err "TPM2_Shutdown failed on $dir/tpm.sock (stopping anyway)"
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 250; i++)); do
		_swtpm_alive "$pid" || break
		sleep 0.02
	done
	if _swtpm_alive "$pid"; then
		_swtpm_err "swtpm $pid ignored SIGTERM; killing"
		kill -KILL "$pid" 2>/dev/null
		for ((i = 0; i < 100; i++)); do
			_swtpm_alive "$pid" || break
			sleep 0.02
		done
	fi
	if _swtpm_alive "$pid"; then
		_swtpm_err "swtpm $pid is still running"
		return 1
	fi
	rm -f "$dir/swtpm.pid"
	return 0
}
