# Sourced by images/testvm/run.sh: the Debian 12 kernel, the modules the VM
# test needs (configfs and virtio from the kernel package; gpio-sim and
# irq_sim built out of tree) and a static busybox, fetched with apt-get and
# cached under $VM_CACHE (build/vm-cache by default; never committed).
#
#   vm_cache_prepare   sets VM_KREL, VM_KVER, VM_KERNEL (bzImage), VM_MODDIR
#                      (every .ko the guest loads), VM_BUSYBOX; returns
#                      non-zero with one line on stderr on failure.
#
# The kernel is the one Debian's linux-image-amd64 currently depends on
# (override: SBX_VM_KERNEL=linux-image-6.1.0-N-amd64).  Its image, its
# headers, linux-kbuild and the matching linux-source are downloaded with
# `apt-get download` (no root needed, nothing installed), unpacked into the
# cache, and the .debs deleted.  Without apt lists (no `apt-get update`) the
# newest complete cache entry is used.
#
# gpio-sim is not built by Debian (CONFIG_GPIO_SIM, CONFIG_IRQ_SIM unset), so
# drivers/gpio/gpio-sim.c and kernel/irq/irq_sim.c are compiled against the
# Debian headers.  irq_sim.c calls irq_to_desc(), which is not exported to
# modules; the call `handle_simple_irq(irq_to_desc(irqnum))` is replaced by
# `generic_handle_irq(irqnum)` (exported; it looks up the same descriptor and
# runs its handler, which irq_sim sets to handle_simple_irq).  irq_sim.c also
# gets a MODULE_LICENSE line, which a built-in file does not need.

: "${VM_CACHE:?}"

_vmc_err() { echo "vm-test: $*" >&2; }

# Prints "PACKAGE VERSION" of the kernel image to use.  One apt-cache call
# (each costs seconds): the metapackage depends on the exact version.
_vmc_resolve() {
	local pkg=${SBX_VM_KERNEL:-} ver
	if [ -n "$pkg" ]; then
		ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
	else
		read -r pkg ver < <(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
			sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*-amd64\) (= \([^)]*\)).*/\1 \2/p' | head -n 1)
	fi
	[ -n "$pkg" ] && [ -n "$ver" ] && [ "$ver" != "(none)" ] || return 1
	echo "$pkg $ver"
}

# Downloads and unpacks into $1 (a fresh directory).  Logs to $1/prepare.log.
_vmc_fill() {
	local d=$1 pkg=$2 ver=$3 krel=$4 log=$1/prepare.log
	local hdr=linux-headers-$krel hcommon kbuild src debs=$1/debs
	local h mod
	mkdir -p "$debs" "$d/root" "$d/src" "$d/modules" || return 1
	hcommon=$(apt-cache depends "$hdr" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /-common$/ { print $2; exit }')
	kbuild=$(apt-cache depends "$hdr" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-kbuild-/ { print $2; exit }')
	src=linux-source-${krel%%.0-*}   # 6.1.0-56-amd64 -> linux-source-6.1
	[ -n "$hcommon" ] && [ -n "$kbuild" ] || { _vmc_err "cannot resolve the dependencies of $hdr"; return 1; }
	echo "downloading $pkg=$ver $hdr $hcommon $kbuild $src busybox-static" >>"$log"
	# `apt-get download` into a directory _apt cannot write warns and
	# downloads unsandboxed; harmless, so the sandbox user is set explicitly.
	if ! (cd "$debs" && apt-get -q -o APT::Sandbox::User="$(id -un)" download \
	      "$pkg=$ver" "$hdr=$ver" "$hcommon=$ver" "$kbuild=$ver" "$src=$ver" busybox-static) >>"$log" 2>&1; then
		_vmc_err "apt-get download failed (log $log): $(grep -E '^(E|W):' "$log" | tail -n 1)"
		return 1
	fi

	# Kernel: the bzImage (booted through the BIOS so ACPI, and with it the
	# TPM, is there) and the few modules the guest loads.
	echo "unpacking $pkg" >>"$log"
	dpkg-deb --fsys-tarfile "$debs/${pkg}_"*.deb | tar -x -C "$d/root" --wildcards \
		"./boot/vmlinuz-$krel" "./boot/config-$krel" \
		"./lib/modules/$krel/kernel/fs/configfs/configfs.ko" \
		"./lib/modules/$krel/kernel/drivers/virtio/*.ko" \
		"./lib/modules/$krel/kernel/drivers/block/virtio_blk.ko" 2>>"$log" || {
		_vmc_err "unpacking $pkg failed (log $log)"; return 1; }
	for h in "$hdr" "$hcommon" "$kbuild"; do
		dpkg-deb -x "$debs/${h}_"*.deb "$d/root" 2>>"$log" || { _vmc_err "unpacking $h failed"; return 1; }
	done
	# The headers' Makefile includes the common tree by absolute path.
	h=$d/root/usr/src/$hdr/Makefile
	grep -q "^include /usr/src/$hcommon/Makefile\$" "$h" || { _vmc_err "unexpected $h"; return 1; }
	sed -i "s|^include /usr/src/$hcommon/Makefile\$|include $d/root/usr/src/$hcommon/Makefile|" "$h" || return 1
	dpkg-deb --fsys-tarfile "$debs/busybox-static_"*.deb | tar -x -C "$d/root" ./bin/busybox 2>>"$log" || {
		_vmc_err "unpacking busybox-static failed"; return 1; }

	# gpio-sim and irq_sim sources, streamed out of the 140 MB source tarball.
	echo "unpacking gpio-sim sources from $src" >>"$log"
	dpkg-deb --fsys-tarfile "$debs/${src}_"*.deb |
		tar -x -O "./usr/src/$src.tar.xz" |
		tar -x -J -C "$d/src" --strip-components=1 \
			"$src/drivers/gpio/gpio-sim.c" "$src/drivers/gpio/gpiolib.h" \
			"$src/drivers/gpio/gpiolib-of.h" "$src/drivers/gpio/gpiolib-acpi.h" \
			"$src/drivers/gpio/gpiolib-cdev.h" "$src/drivers/gpio/gpiolib-sysfs.h" \
			"$src/kernel/irq/irq_sim.c" 2>>"$log" || {
		_vmc_err "extracting gpio-sim sources from $src failed (log $log)"; return 1; }
	rm -rf "$debs"

	mod=$d/gpio-sim
	mkdir -p "$mod" || return 1
	cp "$d/src/drivers/gpio/"*.[ch] "$d/src/kernel/irq/irq_sim.c" "$mod/" || return 1
	if [ "$(grep -c 'handle_simple_irq(irq_to_desc(irqnum));' "$mod/irq_sim.c")" != 1 ]; then
		_vmc_err "irq_sim.c in $src no longer has the one irq_to_desc call this script replaces"
		return 1
	fi
	sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' "$mod/irq_sim.c"
	if grep -q irq_to_desc "$mod/irq_sim.c" "$mod/gpio-sim.c"; then
		_vmc_err "irq_to_desc is still called after the replacement"
		return 1
	fi
	printf '\n#include <linux/module.h>\nMODULE_LICENSE("GPL");\nMODULE_DESCRIPTION("Interrupt simulator, out-of-tree build for the sealbox VM test");\n' \
		>>"$mod/irq_sim.c"
	printf 'obj-m := irq_sim.o gpio-sim.o\n' >"$mod/Kbuild"
	echo "building gpio-sim.ko and irq_sim.ko" >>"$log"
	if ! make -C "$d/root/usr/src/$hdr" M="$mod" modules >>"$log" 2>&1; then
		_vmc_err "building gpio-sim against $hdr failed (log $log): $(grep -E 'error|ERROR' "$log" | head -n 1)"
		return 1
	fi
	if grep -q 'WARNING: modpost: .*undefined' "$log"; then
		_vmc_err "gpio-sim uses symbols $krel does not export (log $log): $(grep 'undefined' "$log" | head -n 1)"
		return 1
	fi
	cp "$mod/irq_sim.ko" "$mod/gpio-sim.ko" "$d/modules/" &&
	cp "$d/root/lib/modules/$krel/kernel/fs/configfs/configfs.ko" \
	   "$d/root/lib/modules/$krel/kernel/drivers/virtio/virtio.ko" \
	   "$d/root/lib/modules/$krel/kernel/drivers/virtio/virtio_ring.ko" \
	   "$d/root/lib/modules/$krel/kernel/drivers/virtio/virtio_pci_modern_dev.ko" \
	   "$d/root/lib/modules/$krel/kernel/drivers/virtio/virtio_pci_legacy_dev.ko" \
	   "$d/root/lib/modules/$krel/kernel/drivers/virtio/virtio_pci.ko" \
	   "$d/root/lib/modules/$krel/kernel/drivers/block/virtio_blk.ko" "$d/modules/" || return 1
	echo "$pkg $ver" >"$d/package"
}

vm_cache_prepare() {
	local pv pkg ver krel d lockfd
	mkdir -p "$VM_CACHE" || return 1
	VM_CACHE=$(cd "$VM_CACHE" && pwd) || return 1
	if pv=$(_vmc_resolve); then
		read -r pkg ver <<<"$pv"
	else
		# No apt lists (or no network for them): fall back on what is cached.
		d=$(ls -1td "$VM_CACHE"/linux-image-*/ 2>/dev/null | while read -r x; do
			[ -s "$x/complete" ] && { echo "$x"; break; }; done)
		if [ -z "$d" ]; then
			_vmc_err "cannot resolve linux-image-amd64 with apt-cache and nothing is cached; run apt-get update"
			return 1
		fi
		read -r pkg ver <"$d/package"
		_vmc_err "apt-cache cannot resolve the kernel; using the cached $pkg $ver"
	fi
	krel=${pkg#linux-image-}
	d=$VM_CACHE/$pkg-$ver
	exec {lockfd}>>"$VM_CACHE/.lock" || return 1
	flock -x "$lockfd" || return 1
	if [ ! -s "$d/complete" ]; then
		echo "# vm-test: preparing $pkg $ver in $d (downloads, gpio-sim build: a few minutes)"
		rm -rf "$d"
		if ! _vmc_fill "$d" "$pkg" "$ver" "$krel" || ! date -u +%FT%TZ >"$d/complete"; then
			exec {lockfd}>&-
			return 1
		fi
	fi
	exec {lockfd}>&-
	VM_KREL=$krel
	VM_KVER=$ver
	VM_KERNEL=$d/root/boot/vmlinuz-$krel
	VM_MODDIR=$d/modules
	VM_BUSYBOX=$d/root/bin/busybox
	local f
	for f in "$VM_KERNEL" "$VM_BUSYBOX" "$VM_MODDIR/gpio-sim.ko" "$VM_MODDIR/irq_sim.ko" "$VM_MODDIR/configfs.ko"; do
		[ -s "$f" ] || { _vmc_err "cache entry $d is incomplete ($f missing); remove it"; return 1; }
	done
}
