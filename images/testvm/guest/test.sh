#!/bin/sh
# The VM test's workflow, run by /init inside the guest (busybox ash).  The
# appliance runs with its production backends only: the TPM through the
# kernel's resource manager (device:/dev/tpmrm0, swtpm on the host behind
# qemu's tpm-tis) and the button and LEDs through libgpiod on a gpio-sim chip
# whose lines are found by name.  A "person" here presses the button by
# writing the line's pull in sysfs, and reads the LEDs from sysfs and from
# the kernel's gpio_value trace events.
#
# Results go to fd 3 as TAP-like lines ("ok N - [step] what", "not ok ...",
# "# comment"); the console gets the same plus details.  Exits 0 when every
# check passed.  /out (copied to the host's disk image at the end) gets the
# release, the identity, the log export, every command's output and the
# gpio traces.
set -u
export TSS2_LOG=all+none
TCTI=device:/dev/tpmrm0
CASE=C-VM-0001
LABEL=sealbox-board
# Button wired to ground with a pull-up (pressed = low); LEDs active-high.
GPIO="chip:$LABEL,button_active=low"
n=0
failed=0
STEP=boot
mkdir -p /out/logs /out/trace

say()  { echo "$*"; echo "$*" >&3; }
ok()   { n=$((n + 1)); say "ok $n - [$STEP] $*"; }
nok()  { n=$((n + 1)); failed=$((failed + 1)); say "not ok $n - [$STEP] $*"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
note() { say "# $*"; }
cs()   { read -r up _ </proc/uptime; echo "${up%.*}${up#*.}"; }   # uptime, centiseconds
step() {
	[ -n "${T0:-}" ] && note "$STEP took $(( $(cs) - T0 ))0 ms"
	STEP=$1; T0=$(cs)
	note "step $STEP: $2"
}
# Shows the last lines of a failed command's output on the results port.
show_err() { sed -n '1,6p' "$1" | while IFS= read -r l; do note "  $l"; done; }

# sb NAME WANT ARGS...: runs sealbox, output in /out/logs/NAME.{out,err};
# passes when it exits WANT.
sb() {
	name=$1 want=$2; shift 2
	sealbox --state /state --tcti "$TCTI" "$@" >"/out/logs/$name.out" 2>"/out/logs/$name.err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "sealbox $1 ($name) exits $want"
		return 0
	fi
	nok "sealbox $1 ($name) exits $want (got $rc)"
	show_err "/out/logs/$name.err"
	return 1
}

# --- boot: the kernel, the TPM, the modules --------------------------------------
step boot "kernel $(uname -r), modules, TPM"
note "kernel up $(cut -d' ' -f1 /proc/uptime) s when the test started"
mods_ok=1
for m in configfs virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk irq_sim gpio-sim; do
	if ! insmod "/lib/modules/$m.ko" 2>/tmp/insmod.err; then
		nok "insmod $m.ko: $(cat /tmp/insmod.err)"
		mods_ok=0
	fi
done
[ "$mods_ok" = 1 ] && ok "kernel $(uname -r) booted; configfs, virtio, irq_sim and gpio-sim loaded"
mount -t configfs configfs /sys/kernel/config
check "the TPM is there: /dev/tpmrm0 (swtpm behind qemu's tpm-tis)" test -c /dev/tpmrm0
note "TPM: $(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null) $(cat /sys/class/tpm/tpm0/device/description 2>/dev/null)"
check "the output disk is there: /dev/vda" test -b /dev/vda

# --- gpio-sim: one chip, the board's four lines among unnamed ones ---------------
step gpio-sim "a simulated GPIO chip \"$LABEL\" with BUTTON, LED_GREEN, LED_AMBER, LED_RED"
G=/sys/kernel/config/gpio-sim/sbx
mk_line() { mkdir "$G/bank0/line$1" && echo "$2" >"$G/bank0/line$1/name"; }
# Offsets deliberately not in role order: the backend must find lines by name.
if mkdir "$G" && mkdir "$G/bank0" && echo "$LABEL" >"$G/bank0/label" &&
   echo 8 >"$G/bank0/num_lines" && mk_line 1 LED_RED && mk_line 2 BUTTON &&
   mk_line 4 LED_GREEN && mk_line 6 LED_AMBER && echo 1 >"$G/live"; then
	ok "gpio-sim chip configured through configfs and live"
else
	nok "gpio-sim chip configured through configfs and live"
fi
CHIP=$(cat "$G/bank0/chip_name" 2>/dev/null)
DEV=$(cat "$G/dev_name" 2>/dev/null)
SYS=/sys/devices/platform/$DEV/$CHIP
OFF_BUTTON=2 OFF_RED=1 OFF_GREEN=4 OFF_AMBER=6
check "GPIO character device /dev/$CHIP and sysfs $SYS exist" test -c "/dev/$CHIP" -a -d "$SYS/sim_gpio$OFF_BUTTON"
BASE=
for c in /sys/class/gpio/gpiochip*; do
	[ "$(cat "$c/label" 2>/dev/null)" = "$LABEL" ] && BASE=$(cat "$c/base")
done
check "chip $CHIP found by label, global base ${BASE:-?}" test -n "$BASE"
note "$(grep -A9 "$LABEL" /sys/kernel/debug/gpio | tr -s ' ' | tr '\n' ';')"
names_ok() { for nm in BUTTON LED_GREEN LED_AMBER LED_RED; do grep -q "($nm *)" /sys/kernel/debug/gpio || return 1; done; }
check "line names visible to the kernel" names_ok

val()   { cat "$SYS/sim_gpio$1/value"; }
pull()  { echo "$2" >"$SYS/sim_gpio$1/pull"; }
press()   { pull $OFF_BUTTON pull-down; }   # active-low: pressed pulls the line to ground
release() { pull $OFF_BUTTON pull-up; }
leds_now() { echo "green=$(val $OFF_GREEN) amber=$(val $OFF_AMBER) red=$(val $OFF_RED) button_line=$(val $OFF_BUTTON)"; }
release
check "button idles high (pull-up, not pressed)" test "$(val $OFF_BUTTON)" = 1

# The kernel's gpio_value trace events record every LED write, including the
# last ones before sealbox exits (gpio-sim then returns released lines to
# their pull, so sysfs alone cannot show a final state).
TR=/sys/kernel/tracing
if [ -d "$TR/events/gpio" ]; then
	echo mono >"$TR/trace_clock"
	echo 1 >"$TR/events/gpio/gpio_value/enable"
	ok "gpio_value trace events enabled"
else
	nok "gpio_value trace events enabled (no tracefs gpio events)"
fi
GG=$((BASE + OFF_GREEN)) GA=$((BASE + OFF_AMBER)) GR=$((BASE + OFF_RED)) GB=$((BASE + OFF_BUTTON))

# ledseq FILE: the LED writes in FILE as tokens LEVEL@SECONDS (G1@12.345678
# A0@... R1@...), sealbox's reads of the button line as B0@... (raw line
# level: 0 = low = pressed), and "|" where the test wrote "sbx: press" into
# the trace.
ledseq() {
	awk -v g="$GG" -v a="$GA" -v r="$GR" -v b="$GB" '
		/tracing_mark_write: sbx: press/ { printf "| "; next }
		/gpio_value: [0-9]+ (set|get) [01]/ {
			for (i = 1; i <= NF; i++) if ($i == "gpio_value:") break
			n = $(i + 1); op = $(i + 2); v = $(i + 3); t = $(i - 1); sub(":", "", t)
			if (op == "get") { if (n == b) printf "B%s@%s ", v, t; next }
			if (n == g) c = "G"; else if (n == a) c = "A"; else if (n == r) c = "R"; else next
			printf "%s%s@%s ", c, v, t
		}' "$1"
}
# ledfacts SEQ: "changes=N final=GxAyRz red=0|1 solid=0|1 work_ms=M arm=L".
# changes: amber level changes before the press mark (all of SEQ if none);
# final: each LED's last level; red: whether red was ever lit; solid: after
# the mark, the last amber write before green came on was "on" (amber held
# solid while working, not still blinking), and work_ms how long it held;
# arm: the button line level sealbox read when it armed (the last read
# before the mark; 1 = high = released, 0 = low = held).
ledfacts() {
	echo "$1" | awk '{
		g = 0; a = 0; r = 0; pa = "0"; ch = 0; mark = 0; red = 0
		solid = 0; decided = 0; a1t = -1; work = -1; arm = "?"
		for (i = 1; i <= NF; i++) {
			if ($i == "|") { mark = 1; continue }
			c = substr($i, 1, 1); v = substr($i, 2, 1); t = substr($i, 4) + 0
			if (c == "B") { if (!mark) arm = v; continue }
			if (c == "R") { r = v; if (v == "1") red = 1 }
			if (c == "A") {
				if (!mark && v != pa) ch++
				pa = v; a = v
				if (mark) a1t = (v == "1") ? t : -1
			}
			if (c == "G") {
				g = v
				if (mark && v == "1" && !decided) {
					decided = 1
					if (a1t >= 0) { solid = 1; work = int((t - a1t) * 1000) }
				}
			}
		}
		printf "changes=%d final=G%sA%sR%s red=%d solid=%d work_ms=%d arm=%s\n", ch, g, a, r, red, solid, work, arm
	}'
}
fact() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# wait_blink PID MAX_CS: polls the amber LED in sysfs every 20 ms until it
# has changed level twice (blinking), the process PID ended, or MAX_CS
# centiseconds passed.  Sets BLINK_CH (changes seen), BLINK_CS (time taken),
# OTHERS (1 if green or red was ever seen lit meanwhile).  Builtins only (no
# fork per poll: under TCG a fork costs more than the poll interval); the
# 20 ms sleep is a read with a timeout on a FIFO nobody writes.
mkfifo /tmp/tick && exec 5<>/tmp/tick
wait_blink() {
	pid=$1 max=$2 BLINK_CH=0 OTHERS=0 BLINK_CS=0
	read -r up _ </proc/uptime; t0=${up%.*}${up#*.}
	read -r prev <"$SYS/sim_gpio$OFF_AMBER/value"
	while :; do
		read -r cur <"$SYS/sim_gpio$OFF_AMBER/value"
		read -r gv <"$SYS/sim_gpio$OFF_GREEN/value"
		read -r rv <"$SYS/sim_gpio$OFF_RED/value"
		[ "$cur" != "$prev" ] && { BLINK_CH=$((BLINK_CH + 1)); prev=$cur; }
		[ "$gv$rv" != 00 ] && OTHERS=1
		read -r up _ </proc/uptime; BLINK_CS=$(( ${up%.*}${up#*.} - t0 ))
		[ "$BLINK_CH" -ge 2 ] && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		[ "$BLINK_CS" -ge "$max" ] && return 1
		read -r -t 0.02 -u 5 _tick
	done
}

# release_start NAME OUT TIMEOUT: a release request in the background.
release_start() {
	echo >"$TR/trace"
	sealbox --state /state --tcti "$TCTI" --gpio "$GPIO" release "$CASE" --to ada \
		--purpose prosecution --authority "Discovery order VM-1" --operator tech.vm \
		--out "$2" --timeout "$3" >"/out/logs/$1.out" 2>"/out/logs/$1.err" &
	RPID=$!
}
release_wait() {   # NAME WANT: waits for the request, checks its exit code
	wait "$RPID"; rc=$?
	cp "$TR/trace" "/out/trace/$1.txt"
	SEQ=$(ledseq "/out/trace/$1.txt")
	FACTS=$(ledfacts "$SEQ")
	note "LED writes ($1): $SEQ"
	note "LED facts ($1): $FACTS"
	if [ "$rc" -eq "$2" ]; then ok "sealbox release ($1) exits $2"; else
		nok "sealbox release ($1) exits $2 (got $rc)"; show_err "/out/logs/$1.err"; fi
}
empty_dir() { [ ! -d "$1" ] || [ -z "$(ls -A "$1")" ]; }
log_count() {   # EVENT OUTCOME: records in the custody log (as of the last log_read)
	awk -v e="$1" -v o="$2" '$3 == e && $4 == o' /out/logs/log-show.txt | wc -l
}
log_read() { sealbox --state /state log show >/out/logs/log-show.txt 2>&1; }
note "LEDs before the box runs: $(leds_now)"

# --- provisioning -------------------------------------------------------------------
step init "provisioning on the TPM through /dev/tpmrm0"
sb init 0 init --operator installer.vm
sb identity 0 identity --out /out/identity.sbxi
check "identity written" test -s /out/identity.sbxi
sb trust 0 trust add --role prosecutor /data/prosecutor-ca.pem --operator admin.vm
sb recipient 0 recipient add ada /data/ada.pem --role prosecutor --attestation "CRS-24-74-105 VM-1" --operator admin.vm
note "LEDs after provisioning (no GPIO used): $(leds_now)"

# --- a hold and an ingest -----------------------------------------------------------
step hold "a case hold"
sb hold 0 hold open "$CASE" --authority "Warrant VM-1" --purpose criminal-investigation --operator tech.vm
step ingest "ingest of the sample export made on the host"
sb ingest 0 ingest "$CASE" /data/export.zip --operator tech.vm --source vm-sample
check "ingest sealed 30 reads" grep -q '30 reads' /out/logs/ingest.out
note "$(sed -n 1,2p /out/logs/ingest.out | tr '\n' ' ')"
note "LEDs after ingest: $(leds_now)"

# --- a release confirmed by a press after amber is seen blinking --------------------
step release-confirmed "the button pressed after amber blinks"
release_start confirmed /out/release 60
if wait_blink "$RPID" 3000; then
	ok "amber seen blinking in sysfs ($BLINK_CH changes in ${BLINK_CS}0 ms)"
else
	nok "amber seen blinking in sysfs (changes $BLINK_CH in ${BLINK_CS}0 ms)"
fi
check "green and red off while waiting" test "$OTHERS" = 0
note "LEDs while waiting: $(leds_now)"
echo "sbx: press" >"$TR/trace_marker"
press; usleep 200000; release
release_wait confirmed 0
check "sealbox read the button released when it armed (trace)" test "$(fact arm "$FACTS")" = 1
check "release files written (.sbx and .release)" sh -c 'ls /out/release/*.sbx && ls /out/release/*.release' 
check "amber blinked before the press (trace: $(fact changes "$FACTS") changes)" test "$(fact changes "$FACTS")" -ge 2
check "amber solid (working) after the press until green came on ($(fact work_ms "$FACTS") ms)" test "$(fact solid "$FACTS")" = 1
check "ends green lit (blinking: done), amber and red off" test "$(fact final "$FACTS")" = G1A0R0
check "red never lit" test "$(fact red "$FACTS")" = 0
check "confirmation code shown" grep -q 'RELEASE REQUEST' /out/logs/confirmed.out
note "LEDs after exit (lines released, back to their pull): $(leds_now)"

# --- a press before arming does not count -------------------------------------------
step release-early-press "pressed before the request was armed, let go after amber blinks"
press; usleep 100000; release; usleep 100000   # a press and release before the request
press                                            # and one held down from before arming
release_start early /out/early 4
if wait_blink "$RPID" 3000; then ok "amber seen blinking with the button held"; else
	nok "amber seen blinking with the button held (changes $BLINK_CH)"; fi
echo "sbx: press" >"$TR/trace_marker"   # marks the let-go
release
release_wait early 9
check "sealbox read the button held down when it armed (trace)" test "$(fact arm "$FACTS")" = 0
check "nothing written" empty_dir /out/early
check "amber blinked ($(fact changes "$FACTS") changes)" test "$(fact changes "$FACTS")" -ge 2
check "ends red on, green and amber off" test "$(fact final "$FACTS")" = G0A0R1

# --- a request nobody confirms --------------------------------------------------------
step release-timeout "nobody presses (3 s)"
release_start timeout /out/timeout 3
if wait_blink "$RPID" 3000; then ok "amber seen blinking"; else nok "amber seen blinking (changes $BLINK_CH)"; fi
release_wait timeout 9
check "nothing written" empty_dir /out/timeout
check "amber blinked ($(fact changes "$FACTS") changes)" test "$(fact changes "$FACTS")" -ge 2
check "ends red on, green and amber off" test "$(fact final "$FACTS")" = G0A0R1
log_read
check "both unconfirmed requests logged as release.timeout" test "$(log_count release.timeout timeout)" -eq 2
check "one release confirmed in the log" test "$(log_count release.confirm ok)" -eq 1

# --- the auditor's exports -----------------------------------------------------------
step audit "log verify and export"
sb log-verify 0 log verify
sb log-export 0 log export /out/log.sbxl --operator auditor.vm
log_read
dmesg >/out/logs/dmesg.txt

# --- hand the results to the host: a tar on the raw output disk --------------------
step copy-out "tar of /out onto /dev/vda"
note "guest: $n checks, $failed failed"
tar -c -f /tmp/out.tar -C /out . 2>/tmp/tar.err
bytes=$(wc -c </tmp/out.tar)
sum=$(sha256sum /tmp/out.tar | cut -d' ' -f1)
if dd if=/tmp/out.tar of=/dev/vda bs=1M conv=fsync 2>/tmp/dd.err; then
	say "# out: bytes=$bytes sha256=$sum"
else
	nok "copy to /dev/vda: $(tail -n 1 /tmp/dd.err)"
fi
[ "$failed" -eq 0 ]
