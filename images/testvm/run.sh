#!/usr/bin/env bash
# make vm-test: the appliance on a real Linux kernel with its production
# backends — libgpiod on the kernel's gpio-sim, and the TPM through
# /dev/tpmrm0 with swtpm as the VM's TPM — then the release checked outside
# the VM with sealbox-verify and sealbox-open.  See images/testvm/README.md.
#
# Host side, in order: the cached Debian kernel and modules (cache.sh), a
# test PKI and a sample export, an initramfs (busybox, sealbox and its
# shared libraries, the modules, guest/init, guest/test.sh, the data), a
# fresh swtpm state with EK certificates, qemu (TCG) with swtpm on tpm-tis,
# results on the second serial port, a raw output disk; then the checks.
#
# Environment: BUILD (default build/release), SBX_VM_CACHE (default
# build/vm-cache), SBX_VM_TIMEOUT (seconds for the VM, default 600),
# SBX_VM_KERNEL (a linux-image-6.1.0-N-amd64 package instead of the current
# one).  Everything of a run stays in $BUILD/vm-test for inspection.
# Prints TAP-like lines; exits 0 only when every check passed.
set -u
cd "$(dirname "$0")/../.." || exit 1
SBX_TOP=$PWD
export SBX_TOP
BUILD=${BUILD:-build/release}
BIN=$SBX_TOP/$BUILD
VM_CACHE=${SBX_VM_CACHE:-$SBX_TOP/build/vm-cache}
TIMEOUT=${SBX_VM_TIMEOUT:-600}
W=$BIN/vm-test
. tests/lib/common.sh
. tests/lib/swtpm.sh
. images/testvm/cache.sh

t_start=$(date +%s%N)
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
die() { fail "$*"; done_testing; exit 1; }

# --- what the host needs -------------------------------------------------------------
for c in qemu-system-x86_64 swtpm swtpm_setup apt-get apt-cache dpkg-deb make openssl ldd flock; do
	command -v "$c" >/dev/null || die "vm-test needs $c (apt-get install qemu-system-x86 swtpm swtpm-tools)"
done
for p in sealbox sealbox-verify sealbox-open tests/tools/gen_reads; do
	[ -x "$BIN/$p" ] || die "vm-test needs $BIN/$p (make BUILD=$BUILD all tests)"
done
TCTI_DEVICE=$(ldconfig -p | awk '$1 == "libtss2-tcti-device.so.0" && /x86-64/ { print $NF; exit }')
[ -n "$TCTI_DEVICE" ] || die "libtss2-tcti-device.so.0 not found (apt-get install libtss2-tcti-device0)"

SWTPM_PID="" QEMU_PID=""
cleanup() {
	[ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null
	if [ -n "$SWTPM_PID" ]; then
		kill "$SWTPM_PID" 2>/dev/null
		wait "$SWTPM_PID" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$W"
mkdir -p "$W" || die "cannot create $W"

# --- kernel and modules (cached) --------------------------------------------------
t=$(date +%s%N)
vm_cache_prepare || die "kernel, modules and busybox for the VM"
echo "# vm-test: kernel $VM_KREL ($VM_KVER), cache ready in $(ms_since "$t") ms"

# --- the data the guest needs: a PKI (the recipient key stays here) and an export ----
t=$(date +%s%N)
R=$W/initramfs
P=$W/pki
mkdir -p "$R"/{bin,usr/bin,lib/x86_64-linux-gnu,lib64,lib/modules,data} "$P" || die "mkdir"
mkca() {   # name org
	openssl ecparam -name prime256v1 -genkey -noout -out "$P/$1.key" 2>/dev/null &&
	openssl req -x509 -new -key "$P/$1.key" -subj "/O=$2/CN=$1" -days 3650 \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-out "$P/$1.pem" 2>/dev/null
}
mkleaf() {   # name ca org
	openssl ecparam -name prime256v1 -genkey -noout -out "$P/$1.key" 2>/dev/null &&
	openssl req -new -key "$P/$1.key" -subj "/O=$3/CN=$1" -out "$P/$1.csr" 2>/dev/null &&
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,keyAgreement,digitalSignature\n' >"$P/$1.ext" &&
	openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.pem" -CAkey "$P/$2.key" -CAcreateserial \
		-days 365 -extfile "$P/$1.ext" -out "$P/$1.pem" 2>/dev/null
}
mkca prosecutor-ca "Denver DA" && mkleaf ada prosecutor-ca "Denver DA" || die "test PKI"
cp "$P/prosecutor-ca.pem" "$P/ada.pem" "$R/data/"
"$BIN/tests/tools/gen_reads" --out "$W/export" --count 30 --seed 11 --format csv --archive zip >/dev/null ||
	die "gen_reads"
cp "$W/export/export.zip" "$R/data/export.zip" || die "sample export"

# --- the initramfs ------------------------------------------------------------------
cp "$VM_BUSYBOX" "$R/bin/busybox" && cp "$VM_MODDIR"/*.ko "$R/lib/modules/" &&
cp images/testvm/guest/init "$R/init" && cp images/testvm/guest/test.sh "$R/test.sh" &&
chmod 0755 "$R/init" "$R/bin/busybox" || die "initramfs files"
# sealbox, the TCTI it loads at run time (dlopen, so ldd does not list it),
# and every shared library either needs.
cp "$BIN/sealbox" "$R/usr/bin/sealbox" && cp -L "$TCTI_DEVICE" "$R/lib/x86_64-linux-gnu/" || die "sealbox"
libs=$( { ldd "$BIN/sealbox"; ldd "$TCTI_DEVICE"; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
for l in $libs; do
	case $l in
	*/ld-linux-x86-64.so.2) cp -L "$l" "$R/lib64/ld-linux-x86-64.so.2" ;;
	*) cp -L "$l" "$R/lib/x86_64-linux-gnu/$(basename "$l")" ;;
	esac || die "copying $l"
done
(cd "$R" && find . | LC_ALL=C sort | "$VM_BUSYBOX" cpio -o -H newc 2>/dev/null) >"$W/initramfs.cpio" ||
	die "cpio"
echo "# vm-test: initramfs $(( $(stat -c %s "$W/initramfs.cpio") / 1048576 )) MiB, data and image in $(ms_since "$t") ms"

# --- the TPM: a fresh manufactured state (EK certificates from the test CA) ----------
S=$W/tpm
_swtpm_manufacture "$S" || die "swtpm state"
EKCA=$(_swtpm_ca_dir)/ekca.pem
swtpm socket --tpm2 --tpmstate "dir=$S/state" --ctrl "type=unixio,path=$S/swtpm.sock" \
	--log "file=$S/swtpm.log" --terminate </dev/null &
SWTPM_PID=$!
for _ in $(seq 100); do [ -S "$S/swtpm.sock" ] && break; sleep 0.05; done
[ -S "$S/swtpm.sock" ] || die "swtpm did not create $S/swtpm.sock (log $S/swtpm.log)"

# --- the VM ---------------------------------------------------------------------------
truncate -s 64M "$W/out.img" || die "output disk"
t=$(date +%s%N)
timeout "$TIMEOUT" qemu-system-x86_64 \
	-machine pc -accel tcg -cpu max -smp 2 -m 1024 \
	-nodefaults -display none -no-reboot -no-user-config \
	-kernel "$VM_KERNEL" -initrd "$W/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 quiet mitigations=off random.trust_cpu=on cryptomgr.notests" \
	-chardev "socket,id=chrtpm,path=$S/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
	-device tpm-tis,tpmdev=tpm0 \
	-serial "file:$W/console.log" -serial "file:$W/results.log" \
	-drive "file=$W/out.img,format=raw,if=virtio,cache=unsafe" \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	</dev/null >"$W/qemu.log" 2>&1 &
QEMU_PID=$!
wait "$QEMU_PID"
qrc=$?
QEMU_PID=
vm_ms=$(ms_since "$t")
# swtpm --terminate ends when qemu closes the control channel; if qemu never
# connected it would wait forever.
for _ in $(seq 50); do _swtpm_alive "$SWTPM_PID" || break; sleep 0.1; done
kill "$SWTPM_PID" 2>/dev/null
wait "$SWTPM_PID" 2>/dev/null
SWTPM_PID=

# --- the guest's results ------------------------------------------------------------
tr -d '\r' <"$W/results.log" >"$W/results.txt"
while IFS= read -r line; do
	case $line in
	"ok "*)     ok "guest: ${line#ok * - }" ;;
	"not ok "*) fail "guest: ${line#not ok * - }" ;;
	"#"*)       echo "$line" ;;
	esac
done <"$W/results.txt"
case $qrc in
33) ok "the VM reported success through isa-debug-exit (in $vm_ms ms)" ;;
35) fail "the VM reported failure through isa-debug-exit (in $vm_ms ms)" ;;
124) fail "the VM did not finish within $TIMEOUT s (console $W/console.log)" ;;
*) fail "qemu exited $qrc: the guest crashed or never ran its test (console $W/console.log, $W/qemu.log)" ;;
esac
if [ "$qrc" != 33 ]; then
	echo "# last console lines:"
	tail -n 25 "$W/console.log" | sed 's/^/#   /'
	tail -n 5 "$W/qemu.log" | sed 's/^/#   qemu: /'
fi

# --- outside the VM: what the recipient and the auditor do ------------------------------
O=$W/out
read -r bytes sum < <(sed -n 's/^# out: bytes=\([0-9]*\) sha256=\([0-9a-f]*\)$/\1 \2/p' "$W/results.txt" | tail -n 1)
if [ -n "${bytes:-}" ] && [ "$(head -c "$bytes" "$W/out.img" | sha256sum | cut -d' ' -f1)" = "$sum" ]; then
	ok "the guest's results arrived intact on the output disk ($bytes bytes)"
	mkdir -p "$O" && head -c "$bytes" "$W/out.img" | tar -x -C "$O"
else
	fail "the guest's results arrived intact on the output disk"
fi
BUNDLE=$(ls "$O"/release/*.sbx 2>/dev/null | head -n 1)
if [ -n "$BUNDLE" ]; then
	expect_exit 0 "sealbox-verify accepts the release made in the VM" "$BIN/sealbox-verify" "$BUNDLE" \
		--identity "$O/identity.sbxi" --ek-ca "$EKCA" --log "$O/log.sbxl"
	expect_exit 0 "sealbox-open opens it with the recipient's key (never inside the VM)" \
		"$BIN/sealbox-open" "$BUNDLE" --key "$P/ada.key" --cert "$P/ada.pem" --out "$W/opened"
	rows=$(find "$W/opened" -name 'reads.csv' -exec cat {} + 2>/dev/null | wc -l)
	check "the opened release holds the 30 reads sent in (reads.csv: $rows lines)" test "$rows" -eq 31
else
	fail "a release came out of the VM"
fi

echo "# vm-test: VM $vm_ms ms, total $(ms_since "$t_start") ms; files in $W"
done_testing
