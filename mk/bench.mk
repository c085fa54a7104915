# make bench: sealbox against the tools people would use instead (issue 6):
# tar | gpg, tar | age, tar | openssl cms, their decrypt direction, and the
# baselines (tar, openssl dgst, openssl speed).  Not part of make check;
# nothing here asserts a time.  See bench/README.md.
#
#   make bench                 the full run: 10,000 images (~1.25 GB) and
#                              1,000,000 reads, 5 interleaved runs each;
#                              writes bench/results/results.{md,json}
#   make bench BENCH_QUICK=1   a smoke test in about a minute: small data,
#                              2 runs, results under build/bench/results-quick
#
# The data is generated once (tests/bench/gen_bench.c) and cached under
# $(BENCH_DIR)/data; the appliance's state, the swtpm and the outputs live in
# $(BENCH_DIR)/work and are made afresh by every run.

BENCH_QUICK ?= 0
BENCH_DIR   ?= build/bench
ifeq ($(BENCH_QUICK),1)
BENCH_RUNS   ?= 2
BENCH_IMAGES ?= 200
BENCH_READS  ?= 20000
BENCH_OUT    ?= $(BENCH_DIR)/results-quick
BENCH_FLAGS  ?= --quick --cms-decrypt 0
else
BENCH_RUNS   ?= 5
BENCH_IMAGES ?= 10000
BENCH_READS  ?= 1000000
BENCH_OUT    ?= bench/results
BENCH_FLAGS  ?=
endif

BENCH_GEN   := $(BUILD)/tests/bench/gen_bench
BENCH_DATA  := $(BENCH_DIR)/data
BENCH_IMG   := $(BENCH_DATA)/img-$(BENCH_IMAGES)
BENCH_RDS   := $(BENCH_DATA)/reads-$(BENCH_READS)
BENCH_TINY  := $(BENCH_DATA)/tiny

.PHONY: bench bench-deps bench-data

$(BENCH_GEN): $(BUILD)/tests/bench/gen_bench.o
	$(QLD)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS)

# Order-only on the generator: a rebuilt generator makes the same bytes, so
# the cached data stays.
$(BENCH_DATA)/img-%/.complete: | $(BENCH_GEN)
	$(Q)mkdir -p $(BENCH_DATA) && $(BENCH_GEN) --out $(@D) --count $* --image-min-kb 50 --image-max-kb 200
$(BENCH_DATA)/reads-%/.complete: | $(BENCH_GEN)
	$(Q)mkdir -p $(BENCH_DATA) && $(BENCH_GEN) --out $(@D) --count $* --seed 7
$(BENCH_TINY)/.complete: | $(BENCH_GEN)
	$(Q)mkdir -p $(BENCH_DATA) && $(BENCH_GEN) --out $(@D) --count 6 --seed 8

bench-deps: deps
	$(Q)tests/bench/deps.sh

bench-data: $(BENCH_IMG)/.complete $(BENCH_RDS)/.complete $(BENCH_TINY)/.complete

bench: bench-deps
	$(Q)$(MAKE) --no-print-directory all $(BENCH_GEN)
	$(Q)$(MAKE) --no-print-directory bench-data
	$(Q)python3 tests/bench/bench.py --bin $(BUILD) --img $(BENCH_IMG) --reads $(BENCH_RDS) \
		--tiny $(BENCH_TINY) --work $(BENCH_DIR)/work --out $(BENCH_OUT) \
		--runs $(BENCH_RUNS) $(BENCH_FLAGS)
