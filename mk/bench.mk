# `make bench`: the wrapper's cost next to kernel loopback, raw AF_UNIX sockets and Debian's
# libsocket-wrapper (issue 6). Workloads in bench/*.c, runner bench/run.py (stdlib only);
# results in build/bench/results.json and build/bench/table.md.
# BENCH_ARGS passes options to the runner, e.g. `make bench BENCH_ARGS="--reps 9"`.

BENCH_DIR := $(BUILD)/bench
BENCH_PROGS := $(patsubst bench/%.c,$(BENCH_DIR)/%,$(wildcard bench/*.c))
BENCH_CFLAGS := -O2 -Wall -Wextra
BENCH_ARGS ?=

.PHONY: bench bench-progs
bench-progs: $(BENCH_PROGS)

$(BENCH_DIR)/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

bench: all bench-progs
	$(PYTHON) bench/run.py --bin-dir $(BENCH_DIR) --lib $(BUILD)/libsocket_wrapper.so $(BENCH_ARGS)
