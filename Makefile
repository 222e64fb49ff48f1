# cwrap-py: build the native libraries, install, test, demo.

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=
VERSION := 0.1.0

CC ?= cc
CFLAGS ?= -O2 -g
WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASE_CFLAGS := $(WARN) -fPIC -fvisibility=hidden -D_GNU_SOURCE -Inative/include -Inative/src
LDLIBS := -ldl -lpthread

BUILD ?= build
SRCS := $(sort $(wildcard native/src/*.c))
LIB_SRCS := $(filter-out native/src/noop.c,$(SRCS))
LIB_OBJS := $(LIB_SRCS:native/src/%.c=$(BUILD)/obj/%.o)
HDRS := $(wildcard native/src/*.h native/include/*.h)

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python

.PHONY: all install venv test lint demo clean
all: $(BUILD)/libsocket_wrapper.so $(BUILD)/libsocket_wrapper_noop.so

$(BUILD)/obj/%.o: native/src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libsocket_wrapper.so: $(LIB_OBJS) native/exports.map
	$(CC) -shared -Wl,--version-script=native/exports.map -Wl,-z,defs -o $@ $(LIB_OBJS) $(LDLIBS)

$(BUILD)/libsocket_wrapper_noop.so: $(BUILD)/obj/noop.o
	$(CC) -shared -Wl,-soname,libsocket_wrapper_noop.so.0 -Wl,-z,defs -o $@ $<

$(BUILD)/%.pc: native/%.pc.in
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

install: all $(BUILD)/socket_wrapper.pc $(BUILD)/socket_wrapper_noop.pc
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BUILD)/libsocket_wrapper.so $(DESTDIR)$(LIBDIR)/libsocket_wrapper.so
	install -m 0755 $(BUILD)/libsocket_wrapper_noop.so $(DESTDIR)$(LIBDIR)/libsocket_wrapper_noop.so.0
	ln -sf libsocket_wrapper_noop.so.0 $(DESTDIR)$(LIBDIR)/libsocket_wrapper_noop.so
	install -m 0644 native/include/socket_wrapper.h $(DESTDIR)$(INCLUDEDIR)/socket_wrapper.h
	install -m 0644 $(BUILD)/socket_wrapper.pc $(BUILD)/socket_wrapper_noop.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 0644 man/socket_wrapper.1 man/swrap.1 $(DESTDIR)$(MANDIR)/man1/

# The test environment: the package installed the way users install it.
$(VENV)/.stamp: pyproject.toml setup.py $(SRCS) $(HDRS) $(wildcard cwrap_py/*.py)
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q . pytest hypothesis ruff
	touch $@
venv: $(VENV)/.stamp

test: all venv
	$(VPY) -m pytest -q tests

lint: venv
	$(VENV)/bin/ruff check cwrap_py tests

demo: all venv
	bash scripts/demo.sh

clean:
	rm -rf $(BUILD) $(VENV) *.egg-info

# Further targets (sanitizers, benchmarks) live in mk/.
-include $(wildcard mk/*.mk)
