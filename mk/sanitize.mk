# Sanitizer and valgrind runs (issue 3, item 12; DESIGN.md section 5).
#
#   make check-asan       library and C test programs built with AddressSanitizer
#   make check-tsan       ... with ThreadSanitizer
#   make check-helgrind   the threaded C tests under valgrind --tool=helgrind, normal library
#   make check-sanitizers all three
#
# The tests run are the ones marked `sanitize` (or `helgrind`) in the files below; the marker is
# registered by tests/procsupport.py. They run with SOCKET_WRAPPER_DISABLE_DEEPBIND=1, the
# sanitizer runtime preloaded before the library, and fail on any sanitizer or valgrind report
# (a report line on stderr, or the tool's exit code).

SAN_CC ?= gcc
SAN_TESTS ?= tests/test_fdlife.py tests/test_threads.py tests/test_fork_exec.py \
	tests/test_libc_variants.py
SAN_PY = $(if $(wildcard $(VPY)),$(VPY),$(PYTHON))
SAN_PYTEST = $(SAN_PY) -m pytest -q -p no:cacheprovider $(SAN_PYTEST_ARGS)

ASAN_FLAGS := -fsanitize=address -fno-omit-frame-pointer
TSAN_FLAGS := -fsanitize=thread
SAN_CFLAGS := -O1 -g
ASAN_RT = $(shell $(SAN_CC) -print-file-name=libasan.so)
TSAN_RT = $(shell $(SAN_CC) -print-file-name=libtsan.so)

SAN_ASAN_OPTIONS := detect_leaks=1:halt_on_error=1:exitcode=86:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1
SAN_TSAN_OPTIONS := halt_on_error=0:exitcode=66:second_deadlock_stack=1
HELGRIND = valgrind --tool=helgrind -q --error-exitcode=99 --num-callers=30


.PHONY: check-asan check-tsan check-helgrind check-sanitizers

# $(call san_check,asan|tsan,ASAN|TSAN): the recipe of check-asan / check-tsan. The library
# and the C test programs are built with $(2)_FLAGS into build/$(1), and the sanitize-marked
# tests run with $(2)_RT preloaded and $(2)_OPTIONS set to SAN_$(2)_OPTIONS.
define san_check
	$(MAKE) --no-print-directory BUILD=build/$(1) CC='$(SAN_CC) $($(2)_FLAGS)' \
		CFLAGS='$(SAN_CFLAGS)' all
	@test -f '$($(2)_RT)' || { echo "no lib$(1).so for $(SAN_CC)"; exit 1; }
	CWRAP_TEST_LIBRARY='$(CURDIR)/build/$(1)/libsocket_wrapper.so' \
	CWRAP_TEST_PRELOAD='$(realpath $($(2)_RT))' \
	CWRAP_TEST_SANITIZER=$(1) \
	CWRAP_TEST_CFLAGS='$(SAN_CFLAGS) $($(2)_FLAGS)' \
	CC='$(SAN_CC)' \
	$(2)_OPTIONS='$(SAN_$(2)_OPTIONS)' \
	$(SAN_PYTEST) -m sanitize $(SAN_TESTS)
endef

check-asan:
	$(call san_check,asan,ASAN)

check-tsan:
	$(call san_check,tsan,TSAN)

# Helgrind does not model C11 atomics; the library annotates where it publishes data through
# them (valgrind/helgrind.h), and looks its libc functions up under pthread_once.
check-helgrind: all
	@command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }
	CWRAP_TEST_LIBRARY='$(CURDIR)/$(BUILD)/libsocket_wrapper.so' \
	CWRAP_TEST_SANITIZER=helgrind \
	CWRAP_TEST_TOOL='$(HELGRIND)' \
	$(SAN_PYTEST) -m helgrind $(SAN_TESTS)

check-sanitizers: check-asan check-tsan check-helgrind
