# Hardening and tamper campaigns (issue 5): the seccomp test, the binary
# hardening check, static analysis, and the tamper campaigns.
#
#   make harden-check     seccomp allowlist + hardening of installed binaries
#   make tamper-quick     reduced tamper campaigns (seconds; part of check)
#   make tamper           full campaigns: every bit of a 64 KiB bundle, every
#                         byte of a 1 MiB release, every mutation/truncation of
#                         a 10,000-record log export (minutes)
#   make analyze          clang-tidy, cppcheck and scan-build over the tree
#
# Test programs under tests/harden/*.c and tests/tamper/*.c build like unit
# tests (all libraries); the scripts beside them find them in $(BUILD).

.PHONY: harden-bins harden-check tamper tamper-quick analyze analyze-deps analyze-tidy \
        analyze-cppcheck analyze-scan-build

HARDEN_SRC  := $(wildcard tests/harden/*.c) $(wildcard tests/tamper/*.c)
HARDEN_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(HARDEN_SRC))

$(BUILD)/tests/harden/%: $(BUILD)/tests/harden/%.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(QLD)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(APP_LIBS)

$(BUILD)/tests/tamper/%: $(BUILD)/tests/tamper/%.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(QLD)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(APP_LIBS)

# The tamper driver memoizes signature checks (see tests/tamper/flipper.c).
$(BUILD)/tests/tamper/flipper: LDFLAGS += -Wl,--wrap=sig_verify

harden-bins: $(PROGS) $(TOOL_BINS) $(HARDEN_BINS)

# make check builds them too (tests/run.sh runs the scripts).
tests: $(HARDEN_BINS)

harden-check: deps
	$(Q)$(MAKE) --no-print-directory harden-bins
	$(Q)rc=0; for t in tests/harden/*.sh; do \
		$(HARDEN_ENV) SANITIZE=$(SANITIZE) RELEASE=$(RELEASE) bash $$t || rc=1; \
	done; exit $$rc

# --- the campaigns -------------------------------------------------------
# Scripts need absolute paths to the binaries.
HARDEN_ENV = BUILD=$(BUILD) SBX_BIN=$(CURDIR)/$(BUILD) SBX_TOP=$(CURDIR)

tamper-quick: deps
	$(Q)$(MAKE) --no-print-directory harden-bins
	$(Q)$(HARDEN_ENV) bash tests/tamper/tamper.sh quick

tamper: deps
	$(Q)$(MAKE) --no-print-directory harden-bins
	$(Q)$(HARDEN_ENV) bash tests/tamper/tamper.sh full

# --- static analysis -------------------------------------------------------
# Product sources and this file's own test programs.  Each tool's findings
# fail the target; `make -k analyze` reports all of them.
ANALYZE_SRC := $(wildcard appliance/*.c crypto/*.c export/*.c export/cmd/*.c hw/*.c \
                 hw/cmd/*.c tests/harden/*.c tests/tamper/*.c)
ANALYZE_HDR := $(wildcard appliance/*.h crypto/*.h export/*.h hw/*.h)
ANALYZE_DIR  = $(BUILD)/analyze
ANALYZE_CFLAGS = -std=c17 -D_GNU_SOURCE -DSBX_VERSION=\"$(SBX_VERSION)\" -I. $(APP_CFLAGS)
# The analyzer's model of sbx_fail (it returns its code); not for err.c,
# which defines it.
ANALYZE_HINTS = $(if $(filter crypto/err.c,$(1)),,-include tests/harden/analyzer_hints.h)
CLANG_TIDY  ?= clang-tidy
CPPCHECK    ?= cppcheck
SCAN_BUILD  ?= scan-build

ANALYZE_PKGS = clang-tidy cppcheck clang-tools

analyze: analyze-deps
	$(Q)$(MAKE) --no-print-directory analyze-tidy analyze-cppcheck analyze-scan-build

analyze-deps:
	$(Q)tests/lib/deps.sh check $(ANALYZE_PKGS)

# One stamp per file, so `make -j2 analyze` runs two at a time and a clean
# file is not analyzed again until it, a header or .clang-tidy changes.
TIDY_STAMPS := $(patsubst %.c,$(ANALYZE_DIR)/tidy/%.ok,$(ANALYZE_SRC))
$(ANALYZE_DIR)/tidy/%.ok: %.c .clang-tidy $(ANALYZE_HDR) tests/harden/analyzer_hints.h
	@mkdir -p $(dir $@)
	@printf '  TIDY    %s\n' $<
	$(Q)$(CLANG_TIDY) --quiet --warnings-as-errors='*' $< -- $(ANALYZE_CFLAGS) \
		$(call ANALYZE_HINTS,$<) >$@.log 2>&1 \
		|| { grep -v '^[0-9]* warnings\? generated' $@.log; exit 1; }
	$(Q)mv $@.log $@
analyze-tidy: $(TIDY_STAMPS)

# cppcheck: warnings, portability and performance; style is left to review.
# One preprocessor configuration (the build's): all of them take hours.
# Known false positives are suppressed, each with its reason, in
# tests/harden/cppcheck.supp.
analyze-cppcheck:
	@mkdir -p $(ANALYZE_DIR)
	$(Q)$(CPPCHECK) --quiet --error-exitcode=1 --enable=warning,portability,performance \
		--std=c11 --inline-suppr --suppress=missingIncludeSystem \
		--suppressions-list=tests/harden/cppcheck.supp --max-configs=1 \
		-D_GNU_SOURCE -D__linux__ -D__x86_64__ -DSBX_VERSION=\"$(SBX_VERSION)\" -I. \
		--cppcheck-build-dir=$(ANALYZE_DIR) -j2 $(ANALYZE_SRC)

# scan-build: the clang static analyzer over a full build of the programs
# (every library) and of this file's test programs, in a build directory of
# its own.  The hints header is inert for the compiler; crypto/err.c, which
# defines sbx_fail, is analyzed without it (SBX_ANALYZER=1 below).
analyze-scan-build:
	@mkdir -p $(ANALYZE_DIR)
	$(Q)$(SCAN_BUILD) --status-bugs --use-cc=clang -o $(ANALYZE_DIR)/scan-build \
		$(MAKE) --no-print-directory BUILD=$(ANALYZE_DIR)/scan-obj SBX_ANALYZER=1 \
		all $(patsubst tests/%.c,$(ANALYZE_DIR)/scan-obj/tests/%,$(HARDEN_SRC)) CFLAGS="-O2 -g -include $(CURDIR)/tests/harden/analyzer_hints.h"
ifeq ($(SBX_ANALYZER),1)
$(BUILD)/crypto/err.o: override CFLAGS += -DSBX_NO_ANALYZER_HINTS
endif
