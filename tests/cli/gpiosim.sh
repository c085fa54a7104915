#!/usr/bin/env bash
# sealbox-gpiosim: the simulator server, its client commands, and the
# appliance's own confirmation code (hw_confirm over sim:SOCKET, run by
# `sealbox-gpiosim confirm`) against the button rules.  Presses are made the
# way a person would: after amber is seen blinking.
. "${SBX_TOP:-.}/tests/lib/common.sh"

SIM="$SBX_BIN/sealbox-gpiosim"
dir=$(mktemp -d "${TMPDIR:-/tmp}/sbx-gpiosim.XXXXXX")
SOCK="$dir/gpio.sock"
server=""
bg=""
cleanup() {
	# only what this script started, by pid
	[ -n "$bg" ] && kill "$bg" 2>/dev/null
	[ -n "$server" ] && kill "$server" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

start_server() {   # starts `serve $SOCK` in the background; waits until it answers
	"$SIM" serve "$SOCK" --quiet 2>>"$dir/serve.err" &
	server=$!
	for _ in $(seq 100); do
		"$SIM" leds "$SOCK" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# raw protocol client: prints what the server answers; the server hangs up
# on errors, so reading to EOF ends.
raw() {   # bytes (perl string syntax)
	perl -MIO::Socket::UNIX -e '
		my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!";
		print $s eval(qq("$ARGV[1]"));
		shutdown($s, 1);
		local $/; my $r = <$s>; print defined $r ? $r : "";
	' "$SOCK" "$1"
}

# ---- usage and errors ----
expect_exit 0 "--help exits 0" "$SIM" --help
case "$OUT" in *"serve SOCKET"*"wait-led"*) ok "--help lists the commands";; *) fail "--help lists the commands";; esac
expect_exit 2 "no command is a usage error" "$SIM"
expect_exit 2 "unknown command is a usage error" "$SIM" frobnicate "$SOCK"
expect_exit 2 "press without a socket is a usage error" "$SIM" press
expect_exit 2 "bad --hold-ms is a usage error" "$SIM" press "$SOCK" --hold-ms 12x
expect_exit 2 "--hold-ms on leds is a usage error" "$SIM" leds "$SOCK" --hold-ms 5
expect_exit 2 "wait-led with a bad color" "$SIM" wait-led "$SOCK" purple=on
expect_exit 2 "wait-led with a bad state" "$SIM" wait-led "$SOCK" amber=dim
expect_exit 2 "wait-led with a color twice" "$SIM" wait-led "$SOCK" amber=on amber=off
expect_exit 2 "button with a bad level" "$SIM" button "$SOCK" sideways

expect_exit 1 "leds without a server fails" "$SIM" leds "$SOCK"
case "$ERR" in *"no GPIO simulator at $SOCK"*) ok "the error names the socket";; *) fail "the error names the socket: $ERR";; esac
expect_exit 1 "press on a missing directory fails" "$SIM" press "$dir/nope/gpio.sock"
touch "$dir/plain"
expect_exit 1 "serve refuses a path that is not a socket" "$SIM" serve "$dir/plain"
case "$ERR" in *"not a socket"*) ok "and says so";; *) fail "and says so: $ERR";; esac
check "and leaves the file alone" test -f "$dir/plain"
long="$dir/$(printf 'x%.0s' $(seq 120))"
expect_exit 1 "serve refuses a socket path longer than sun_path" "$SIM" serve "$long"
expect_exit 1 "leds refuses a socket path longer than sun_path" "$SIM" leds "$long"

# ---- the server ----
check "serve starts and answers" start_server
check "the socket is owner-only (whoever connects can press)" \
	test "$(( 0$(stat -c %a "$SOCK") & 077 ))" -eq 0
expect_exit 1 "a second server on the same socket is refused" "$SIM" serve "$SOCK"
case "$ERR" in *"already serving"*) ok "and says so";; *) fail "and says so: $ERR";; esac
expect_exit 0 "leds" "$SIM" leds "$SOCK"
check "leds prints exactly one line, all off" test "$OUT" = "green=off amber=off red=off"
check "wait-led on a state that holds returns at once" "$SIM" wait-led "$SOCK" amber=off red=off
expect_exit 3 "wait-led times out with exit 3" "$SIM" wait-led "$SOCK" amber=blink --timeout-ms 200
case "$ERR" in *"timed out"*"amber=blink"*) ok "and says what it waited for";; *) fail "and says what it waited for: $ERR";; esac

# raw protocol, including malformed clients
check "LED request over the protocol" test "$(raw 'LED red on\n')" = "OK"
expect_exit 0 "leds after LED red on" "$SIM" leds "$SOCK"
check "leds shows red=on" test "$OUT" = "green=off amber=off red=on"
check "LED red off" test "$(raw 'LED red off\nLEDS\n')" = "$(printf 'OK\nLEDS green=off amber=off red=off')"
case "$(raw 'garbage\nLEDS\n')" in "ERR "*) ok "unknown request: ERR";; *) fail "unknown request: ERR";; esac
check "and the server hangs up (no answer to what followed)" test "$(raw 'garbage\nLEDS\n' | wc -l)" -eq 1
case "$(raw 'LED red purple\n')" in "ERR "*) ok "bad LED state: ERR";; *) fail "bad LED state: ERR";; esac
case "$(raw 'LED  red on\n')" in "ERR "*) ok "double space: ERR";; *) fail "double space: ERR";; esac
case "$(raw 'LEDS\r\n')" in "ERR "*) ok "CR before the newline: ERR";; *) fail "CR before the newline: ERR";; esac
case "$(raw 'LEDS\x00x\n')" in "ERR "*) ok "NUL inside a line: ERR";; *) fail "NUL inside a line: ERR";; esac
case "$(raw '\xff\xfe\n')" in "ERR "*) ok "binary: ERR";; *) fail "binary: ERR";; esac
case "$(raw "$(printf 'A%.0s' $(seq 300))")" in "ERR line too long"*) ok "300 bytes without newline: ERR";; *) fail "300 bytes without newline: ERR";; esac
case "$(raw 'BUTTON 2\n')" in "ERR "*) ok "BUTTON 2: ERR";; *) fail "BUTTON 2: ERR";; esac
raw '' >/dev/null
perl -MIO::Socket::UNIX -e '
	my @s; for (1..20) { push @s, IO::Socket::UNIX->new(Peer => $ARGV[0]) }
	my $refused = 0;
	select(undef, undef, undef, 0.2);
	for my $s (@s) { next unless $s; $s->blocking(0);
		my $l = <$s>; $refused++ if defined $l && $l =~ /^ERR too many clients/ }
	exit($refused >= 1 ? 0 : 1);
' "$SOCK" && ok "the 17th simultaneous client is refused" || fail "the 17th simultaneous client is refused"
expect_exit 0 "the server survived every malformed client" "$SIM" leds "$SOCK"
check "the server is still running" kill -0 "$server"

# ---- confirmations through hw_confirm (the appliance's code) ----
confirm_bg() {   # timeout_ms: runs `confirm` in the background, output in $dir/confirm.out
	"$SIM" confirm "$SOCK" --timeout-ms "$1" >"$dir/confirm.out" 2>&1 &
	bg=$!
}
confirm_rc() { wait "$bg"; local rc=$?; bg=""; return "$rc"; }

confirm_bg 10000
check "confirm: amber blinks while waiting" "$SIM" wait-led "$SOCK" amber=blink --timeout-ms 5000
check "press after amber blinks" "$SIM" press "$SOCK"
confirm_rc; rc=$?
check "a press and release after arming confirms (exit 0)" test "$rc" -eq 0
check "and says confirmed" grep -qx confirmed "$dir/confirm.out"
expect_exit 0 "leds after confirm" "$SIM" leds "$SOCK"
check "amber is off again" test "$OUT" = "green=off amber=off red=off"

confirm_bg 500
wait "$bg"; rc=$?; bg=""
check "a second request without its own press times out (exit 3)" test "$rc" -eq 3
check "and says not confirmed" grep -q "not confirmed" "$dir/confirm.out"

n=0
for _ in $(seq 10); do "$SIM" press "$SOCK" --hold-ms 40 && n=$((n + 1)); done
check "10 presses before arming" test "$n" -eq 10
confirm_bg 500
confirm_rc; rc=$?
check "presses before arming never count" test "$rc" -eq 3

check "button held down" "$SIM" button "$SOCK" pressed
confirm_bg 800
"$SIM" wait-led "$SOCK" amber=blink --timeout-ms 5000
sleep 0.1
check "button released while armed" "$SIM" button "$SOCK" released
confirm_rc; rc=$?
check "a button held at arming and then released does not confirm" test "$rc" -eq 3

"$SIM" button "$SOCK" pressed
confirm_bg 10000
"$SIM" wait-led "$SOCK" amber=blink --timeout-ms 5000
sleep 0.1
"$SIM" button "$SOCK" released
sleep 0.1
"$SIM" press "$SOCK"
confirm_rc; rc=$?
check "held at arming, released, pressed again: confirms" test "$rc" -eq 0

confirm_bg 600
"$SIM" wait-led "$SOCK" amber=blink --timeout-ms 5000
# both edges in one write: microseconds apart whatever the machine's load
got=$(raw 'BUTTON 1\nBUTTON 0\n')
confirm_rc; rc=$?
check "the glitch reached the server" test "$got" = "$(printf 'OK\nOK')"
check "a glitch below the debounce does not confirm" test "$rc" -eq 3

expect_exit 1 "confirm without a server fails" "$SIM" confirm "$dir/none.sock" --timeout-ms 100
case "$ERR" in *"no GPIO simulator at"*) ok "and says why";; *) fail "and says why: $ERR";; esac

# ---- stopping ----
kill -TERM "$server"; wait "$server"; rc=$?; server=""
check "serve exits 0 on SIGTERM" test "$rc" -eq 0
check "and removes its socket" test ! -e "$SOCK"

# a server killed hard leaves a stale socket; the next one replaces it
"$SIM" serve "$SOCK" --quiet &
server=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
kill -KILL "$server"; wait "$server" 2>/dev/null; server=""
check "a killed server leaves its socket behind" test -S "$SOCK"
check "a new server replaces the stale socket" start_server
kill -TERM "$server"; wait "$server"; server=""
check "the quiet server printed nothing (no sanitizer report either)" test ! -s "$dir/serve.err"

done_testing
