# sealbox — build, test, install.
# Shape after wireguard-tools: overridable tool variables, quiet unless V=1.

PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DESTDIR     ?=
PKG_CONFIG  ?= pkg-config
CC          ?= cc
CFLAGS      ?= -O2 -g
RELEASE     ?= 0
SANITIZE    ?= 0
WERROR      ?= 0

# Hardening flags (OpenSSF compiler hardening guide).  A build that fails with
# these is a bug.
HARDEN_CFLAGS  = -D_FORTIFY_SOURCE=3 -fstack-protector-strong \
                 -fstack-clash-protection -fcf-protection=full -fPIE
HARDEN_LDFLAGS = -pie -Wl,-z,relro,-z,now,-z,noexecstack

WARN = -Wall -Wextra -Wformat=2 -Wimplicit-fallthrough -Wshadow \
       -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif

SBX_VERSION ?= 0.1.0
override CFLAGS += -std=c17 -D_GNU_SOURCE -DSBX_VERSION=\"$(SBX_VERSION)\" -I. $(WARN) $(HARDEN_CFLAGS) -MMD -MP
override LDFLAGS += $(HARDEN_LDFLAGS)

ifeq ($(SANITIZE),1)
# FORTIFY and ASan disagree about some interceptors; ASan checks more anyway.
override CFLAGS := $(filter-out -D_FORTIFY_SOURCE=3 -O2,$(CFLAGS)) -O1 \
   -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
override LDFLAGS += -fsanitize=address,undefined
BUILD ?= build/asan
else
BUILD ?= build/release
endif

ifeq ($(RELEASE),1)
override CFLAGS += -DSBX_RELEASE=1
endif

ifeq ($(FUZZ),1)
override CFLAGS := $(filter-out -D_FORTIFY_SOURCE=3,$(CFLAGS)) \
   -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=address,undefined
endif

ifneq ($(V),1)
Q = @
QCC = @printf '  CC      %s\n' $<;
QLD = @printf '  LD      %s\n' $@;
QAR = @printf '  AR      %s\n' $@;
endif

# Dependencies.  The recipient programs link only the first two.
RECIP_PKGS = libcrypto libarchive
APP_PKGS   = $(RECIP_PKGS) tss2-esys tss2-tctildr tss2-mu tss2-rc sqlite3 libgpiod
RECIP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(RECIP_PKGS) 2>/dev/null)
RECIP_LIBS   := $(shell $(PKG_CONFIG) --libs $(RECIP_PKGS) 2>/dev/null) -lpthread
APP_CFLAGS   := $(shell $(PKG_CONFIG) --cflags $(APP_PKGS) 2>/dev/null)
APP_LIBS     := $(shell $(PKG_CONFIG) --libs $(APP_PKGS) 2>/dev/null) -lpthread

# Libraries by dependency: core (OpenSSL + libarchive only) is what the
# recipient programs link; tpm, hw and appliance are appliance-only.
CORE_SRC  := $(filter-out crypto/tpm%.c,$(wildcard crypto/*.c)) $(wildcard export/*.c)
TPM_SRC   := $(wildcard crypto/tpm*.c)
HW_SRC    := $(wildcard hw/*.c)
ifeq ($(RELEASE),1)
HW_SRC    := $(filter-out hw/sim%.c,$(HW_SRC))
endif
APP_SRC   := $(filter-out appliance/sealbox.c,$(wildcard appliance/*.c))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
CORE_LIB := $(BUILD)/libsbxcore.a
TPM_LIB  := $(BUILD)/libsbxtpm.a
HW_LIB   := $(BUILD)/libsbxhw.a
APP_LIB  := $(BUILD)/libsbxapp.a

RECIP_PROGS := $(patsubst export/cmd/%.c,$(BUILD)/%,$(wildcard export/cmd/*.c))
HW_PROGS    := $(if $(filter 1,$(RELEASE)),,$(patsubst hw/cmd/%.c,$(BUILD)/%,$(wildcard hw/cmd/*.c)))
APP_PROGS   := $(BUILD)/sealbox
PROGS       := $(APP_PROGS) $(RECIP_PROGS) $(HW_PROGS)

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRC))
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ       ?= 0

.PHONY: all check asan demo install uninstall clean fuzz fuzz-bins deps tests
all: $(PROGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(QCC)$(CC) $(CFLAGS) $(APP_CFLAGS) -c -o $@ $<

$(CORE_LIB): $(call obj,$(CORE_SRC))
$(TPM_LIB):  $(call obj,$(TPM_SRC))
$(HW_LIB):   $(call obj,$(HW_SRC))
$(APP_LIB):  $(call obj,$(APP_SRC))
$(CORE_LIB) $(TPM_LIB) $(HW_LIB) $(APP_LIB):
	@mkdir -p $(dir $@)
	$(QAR)rm -f $@ && $(AR) rcs $@ $^

# Link order: appliance -> hw -> tpm -> core.
ALL_LIBS = $(APP_LIB) $(HW_LIB) $(TPM_LIB) $(CORE_LIB)

$(BUILD)/sealbox: $(call obj,appliance/sealbox.c) $(ALL_LIBS)
	$(QLD)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(APP_LIBS)

# Recipient programs: OpenSSL and libarchive only, never tpm2-tss/SQLite/gpiod.
$(RECIP_PROGS): $(BUILD)/%: $(BUILD)/export/cmd/%.o $(CORE_LIB)
	$(QLD)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(RECIP_LIBS)

$(HW_PROGS): $(BUILD)/%: $(BUILD)/hw/cmd/%.o $(HW_LIB) $(CORE_LIB)
	$(QLD)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(APP_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(ALL_LIBS)
	$(QLD)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(APP_LIBS)

$(BUILD)/tests/tools/%: $(BUILD)/tests/tools/%.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(QLD)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(APP_LIBS)

# Corpus replay: each harness linked with a plain main() (no libFuzzer), so
# make check runs every committed corpus under gcc and under ASan.
REPLAY_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz-replay/%,$(FUZZ_SRC))
$(BUILD)/fuzz-replay/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(QLD)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(APP_LIBS)

tests: $(PROGS) $(UNIT_BINS) $(TOOL_BINS) $(REPLAY_BINS)

# libFuzzer: everything rebuilt with clang and coverage, one binary per
# harness, each run FUZZ_TIME seconds over a scratch copy of its corpus.
FUZZ_TIME ?= 60
FUZZ_BUILD = build/fuzz
fuzz: deps
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang FUZZ=1 fuzz-bins
	$(Q)for h in $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC)); do \
		echo "fuzzing $$h for $(FUZZ_TIME) s"; \
		mkdir -p $(FUZZ_BUILD)/corpus/$$h; \
		cp -n tests/fuzz/corpus/$$h/* $(FUZZ_BUILD)/corpus/$$h/ 2>/dev/null; \
		$(FUZZ_BUILD)/fuzz/$$h -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
			$(FUZZ_BUILD)/corpus/$$h >$(FUZZ_BUILD)/$$h.log 2>&1 \
			|| { tail -n 40 $(FUZZ_BUILD)/$$h.log; exit 1; }; \
		grep -E 'stat::number_of_executed_units' $(FUZZ_BUILD)/$$h.log; \
	done

FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
$(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/%.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(QLD)$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDFLAGS) $(APP_LIBS)
fuzz-bins: $(FUZZ_BINS)

deps:
	$(Q)tests/lib/deps.sh check

check: deps
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run.sh

asan:
	$(Q)$(MAKE) --no-print-directory check SANITIZE=1

# The demo's sample data comes from the reads generator (a test tool).
demo: deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/tests/tools/gen_reads
	$(Q)BUILD=$(BUILD) tests/lib/demo.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 $(PROGS) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(wildcard docs/man/*.1) $(DESTDIR)$(MANDIR)/man1/
	$(if $(wildcard docs/man/*.5),install -m 0644 $(wildcard docs/man/*.5) $(DESTDIR)$(MANDIR)/man5/)

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGS)))

clean:
	rm -rf build

# Further targets (bench, vm-test, analyze, fault campaigns) live in mk/*.mk,
# one file each, so they can grow without touching the build above.
include $(wildcard mk/*.mk)

.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
