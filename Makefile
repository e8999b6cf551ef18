# tricolor — one GNU makefile.
#
#   make            libtricolor.a and libtricolor.so in $(BUILD)
#   make run        build and run the demo (examples/linked.c) with gctrace, and chart it
#   make test       the whole test suite: Check suites, the same suites under
#                   ASan+UBSan, the concurrency suites under ThreadSanitizer
#                   (clang), a clang -Werror build, the size-class table check
#                   and an install + pkg-config round trip
#   make bench      side-by-side benchmarks (tools/)
#   make install    PREFIX=/usr/local (DESTDIR honoured)
#
# Dependencies (pkg-config, libatomic_ops, Check) are checked once per build
# directory by tools/deps.sh, which installs them when it can.

VERSION   := 0.1.0
SOVERSION := 0
PREFIX    ?= /usr/local
BUILD     ?= build
CC        ?= cc
SANITIZE  ?=

WARN     := -Wall -Wextra -Werror
OPT      ?= -O2 -g
SANFLAGS  = $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
              -fno-sanitize-recover=all)
# Recursive on purpose: evaluated only after tools/deps.sh has run.
AO_CFLAGS    = $(shell pkg-config --cflags atomic_ops)
AO_LIBS      = $(shell pkg-config --libs atomic_ops)
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS   = $(shell pkg-config --libs check)

CFLAGS_ALL = -std=gnu11 $(OPT) $(WARN) -pthread -fPIC -fvisibility=hidden $(SANFLAGS) \
             -Igc -Ibarrier -Iallocator $(AO_CFLAGS) $(CFLAGS)
LIBS_ALL   = $(AO_LIBS) -pthread $(LDLIBS)

LIB_SRCS  := $(wildcard gc/*.c allocator/*.c barrier/*.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
HEADERS   := gc/tricolor.h barrier/tricolor_barrier.h
TESTS     := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
TEST_LIBS := $(patsubst tests/%.c,$(BUILD)/tests/%.so,$(wildcard tests/lib_*.c))
EXAMPLES  := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
TOOLS     := $(BUILD)/tools/bench_ring $(BUILD)/tools/bench_gcbench $(BUILD)/tools/bench_bintree \
             $(BUILD)/tools/bench_latency $(BUILD)/tools/bench_memory $(BUILD)/tools/bench_madvise \
             $(BUILD)/tools/gcplot

STATIC_LIB := $(BUILD)/libtricolor.a
SHARED_LIB := $(BUILD)/libtricolor.so.$(VERSION)
DEPS_OK    := $(BUILD)/.deps-ok

.PHONY: all lib run test check run-tests tsan-tests bench bench-deps install sizeclasses clean \
        readme-options
.DELETE_ON_ERROR:
.SECONDARY: $(TEST_LIBS)

all lib: $(STATIC_LIB) $(SHARED_LIB)

$(DEPS_OK): tools/deps.sh
	@sh tools/deps.sh
	@mkdir -p $(@D) && touch $@

$(BUILD)/obj/%.o: %.c $(wildcard gc/*.h allocator/*.h allocator/*.inc barrier/*.h) | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(STATIC_LIB): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS) gc/tricolor.map
	$(CC) -shared -Wl,-soname,libtricolor.so.$(SOVERSION) -Wl,--version-script=gc/tricolor.map \
	    $(SANFLAGS) -o $@ $(LIB_OBJS) $(LIBS_ALL)
	ln -sf libtricolor.so.$(VERSION) $(BUILD)/libtricolor.so.$(SOVERSION)
	ln -sf libtricolor.so.$(VERSION) $(BUILD)/libtricolor.so

# Tests, examples and tools link the static library: internal symbols stay
# reachable for unit tests although the shared library hides them.
# Shared objects the suites dlopen (TEST_LIB_DIR tells them where).
$(BUILD)/tests/lib_%.so: tests/lib_%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -shared $< -o $@

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(STATIC_LIB) $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(CHECK_CFLAGS) -Itests -DTEST_LIB_DIR='"$(abspath $(BUILD)/tests)"' \
	    -DSOURCE_DIR='"$(abspath .)"' \
	    $< -o $@ $(STATIC_LIB) $(CHECK_LIBS) $(LIBS_ALL) -ldl

$(BUILD)/examples/%: examples/%.c $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(STATIC_LIB) $(LIBS_ALL)

$(BUILD)/tools/bench_%: tools/bench_%.c tools/bench_child.h $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(STATIC_LIB) $(LIBS_ALL)

# Benchmarks that compare with bdwgc link it too (Debian libgc-dev).
$(BUILD)/tools/bench_ring $(BUILD)/tools/bench_gcbench $(BUILD)/tools/bench_bintree \
    $(BUILD)/tools/bench_latency $(BUILD)/tools/bench_memory: \
    LDLIBS += $(shell pkg-config --libs bdw-gc)

$(BUILD)/tools/gcoptions: tools/gcoptions.c $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(STATIC_LIB) $(LIBS_ALL)

# The README's environment table, from the library's table of settings.
readme-options: $(BUILD)/tools/gcoptions
	$(BUILD)/tools/gcoptions > $(BUILD)/options.md
	awk -v table=$(BUILD)/options.md \
	    '/<!-- options:end -->/ { while ((getline l < table) > 0) print l; skip = 0 } \
	     !skip { print } /<!-- options:begin -->/ { skip = 1 }' README.md > $(BUILD)/README.md
	mv $(BUILD)/README.md README.md

# The gctrace plotter needs no library; test_gcplot links its parser and runs it.
$(BUILD)/tools/gcplot: tools/gcplot.c tools/gctrace.c tools/gctrace.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(OPT) $(WARN) $(SANFLAGS) $(CFLAGS) tools/gcplot.c tools/gctrace.c -o $@ -lm
$(BUILD)/obj/tools/gctrace.o: tools/gctrace.h
$(BUILD)/tests/test_gcplot: $(BUILD)/obj/tools/gctrace.o $(BUILD)/tools/gcplot
$(BUILD)/tests/test_gcplot: private LDLIBS += $(BUILD)/obj/tools/gctrace.o

$(BUILD)/tools/mksizeclasses: tools/mksizeclasses.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 $(WARN) $< -o $@

# The demo with GCDEBUG=gctrace=1 (one line per cycle, Go's format), and
# the chart of its trace.
run: $(BUILD)/examples/linked $(BUILD)/tools/gcplot
	@{ GCDEBUG=gctrace=1 $(BUILD)/examples/linked 2>&1; echo $$? > $(BUILD)/run.status; } | \
	    tee $(BUILD)/gctrace.log
	@$(BUILD)/tools/gcplot -t "examples/linked with GCDEBUG=gctrace=1" -o $(BUILD)/gctrace.svg \
	    $(BUILD)/gctrace.log
	@exit $$(cat $(BUILD)/run.status)

# The whole suite. Sub-makes use their own build directories so that the
# variants never mix objects.
test: all
	$(MAKE) --no-print-directory run-tests
	$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SANITIZE=address,undefined run-tests
	$(MAKE) --no-print-directory sizeclasses-check
	@if command -v clang >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory BUILD=$(BUILD)/clang CC=clang lib && \
	    $(MAKE) --no-print-directory BUILD=$(BUILD)/tsan CC=clang SANITIZE=thread tsan-tests; \
	 else echo "clang not installed: clang and ThreadSanitizer builds skipped"; fi
	sh tests/install_test.sh $(BUILD)
	@sh tests/summary.sh $(BUILD)
check: test

run-tests: $(TESTS)
	@sh tests/run.sh $(BUILD) $(TESTS)

# The concurrency suites under ThreadSanitizer (gcc's TSan rejects the
# fences libatomic_ops uses: build with CC=clang), the torture in all its
# modes, gccheckmark included. tests/tsan.supp lists the documented benign
# races, nothing else.
TSAN_TESTS := $(BUILD)/tests/test_barrier $(BUILD)/tests/test_torture $(BUILD)/tests/test_stats
tsan-tests: $(TSAN_TESTS)
	@TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) halt_on_error=1 $(TSAN_OPTIONS)" \
	    sh tests/run.sh $(BUILD) $(TSAN_TESTS)

sizeclasses-check: $(BUILD)/tools/mksizeclasses
	$(BUILD)/tools/mksizeclasses $(BUILD)/sizeclasses.inc
	cmp $(BUILD)/sizeclasses.inc allocator/sizeclasses.inc
	@echo "size-class table: committed output matches the generator"

sizeclasses: $(BUILD)/tools/mksizeclasses
	$(BUILD)/tools/mksizeclasses allocator/sizeclasses.inc

bench: bench-deps $(TOOLS)
	$(BUILD)/tools/bench_ring
	$(BUILD)/tools/bench_gcbench
	$(BUILD)/tools/bench_bintree -d 18
	$(BUILD)/tools/bench_bintree -d 21
	$(BUILD)/tools/bench_latency -v A
	$(BUILD)/tools/bench_latency -v B
	$(BUILD)/tools/bench_latency -v AB -t 8 -n 5000000
	$(BUILD)/tools/bench_latency -a tricolor -v AB -t 8 -n 20000000

bench-deps:
	@sh tools/deps.sh bench

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libtricolor.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtricolor.so.$(SOVERSION)
	ln -sf libtricolor.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtricolor.so
	install -m 644 $(HEADERS) $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' tricolor.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tricolor.pc

clean:
	rm -rf $(BUILD)
