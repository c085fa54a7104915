# Crash-point and I/O-fault campaigns (issue 5): tests/faults/.
#
#   make faults        every operation x every fault kind, k = 1, 2, 3, ...
#                      until the operation completes (tens of minutes)
#   make faults-quick  a sample of k per operation and fault kind (~2 min);
#                      make check runs it through tests/run.sh
#   make faults-bins   just the LD_PRELOAD shim
#
# FAULTS_ARGS passes options on, e.g. FAULTS_ARGS='--ops "ingest release" --keep'.

FAULTSHIM := $(BUILD)/faults/faultshim.so
FAULTS_ARGS ?=

.PHONY: faults faults-quick faults-bins

# A plain shared object: none of the program hardening flags (-fPIE/-pie)
# apply, and it must not be built with ASan (an ASan build preloads its
# runtime first and forwards to the shim).
$(FAULTSHIM): tests/faults/faultshim.c
	@mkdir -p $(dir $@)
	$(QLD)$(CC) -std=c17 -D_GNU_SOURCE $(WARN) -O2 -g -fPIC -shared \
		-fstack-protector-strong -Wl,-z,relro,-z,now,-z,noexecstack \
		-o $@ $< -ldl -lpthread

faults-bins: $(FAULTSHIM)

# make check builds everything under `tests`; the shim goes with it.
tests: $(FAULTSHIM)

faults: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)SBX_BIN=$(CURDIR)/$(BUILD) SBX_TOP=$(CURDIR) tests/faults/campaign.sh $(FAULTS_ARGS)

faults-quick: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)SBX_BIN=$(CURDIR)/$(BUILD) SBX_TOP=$(CURDIR) tests/faults/campaign.sh --quick $(FAULTS_ARGS)
