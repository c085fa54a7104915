# make vm-test: the production GPIO (libgpiod on the kernel's gpio-sim) and TPM
# (device:/dev/tpmrm0, swtpm as the VM's TPM) paths, exercised by booting a
# Debian 12 kernel under qemu (TCG).  images/testvm/README.md, docs/HARDWARE.md.
# Needs qemu-system-x86 and apt lists (the kernel, its headers and sources are
# fetched with apt-get download and cached in build/vm-cache).
.PHONY: vm-test
vm-test: $(APP_PROGS) $(RECIP_PROGS) $(BUILD)/tests/tools/gen_reads
	$(Q)BUILD=$(BUILD) bash images/testvm/run.sh
