# mod_clinic: build with apxs, test with cmocka and Apache::Test.
#
#   make          build mod_clinic.so, the token tool and the unit tests
#   make run      install missing Debian packages, build, start a demo on 127.0.0.1:8080
#                 (PORT=8081 for another port)
#   make test     install missing Debian packages, build, run every test (SQLite + PostgreSQL)
#   make test-alerts  promtool check and unit-test conf/prometheus/clinic-alerts.yml
#   make test-layers  no circle between the module's files: from the objects' symbols (nm),
#                 the files in layers bottom to top, or the circle found (scripts/layers.pl)
#   make install  install the module and conf/clinic.{load,conf} for a2enmod (an edited
#                 clinic.conf is kept; the shipped one is put beside it as clinic.conf.dist)
#   make fuzz     run the libFuzzer targets (FUZZ_SECONDS each, default 120)
#   make farm     two nodes behind a balancer: races, idempotency, a killed node, graceful restarts
#   make failover PostgreSQL primary + synchronous standby failover, PgBouncer (t/failover/*.t)
#   make bench    wrk on both routes against pgbench's ceiling and the static floor (BENCHMARKS.md)
#   make ASAN=1   the same with AddressSanitizer and UBSan
#   make test-asan  the unit tests and the Apache::Test suite (both databases) built with
#                 ASan/UBSan, failing on any report; then the normal build again (CI runs it)
#   make deb      libapache2-mod-clinic_<version>_<arch>.deb (debian/, dh-apache2, lintian)
#   make test-package  build, install, serve, purge the .deb on the stock Apache (root)

APXS    ?= apxs
CC      ?= cc
AR      ?= ar
WARN     = -Wall -Wextra
SANITIZE = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

ifeq ($(ASAN),1)
APXS_SAN = $(addprefix -Wc$(comma),$(SANITIZE)) $(addprefix -Wl$(comma),$(SANITIZE))
UNIT_SAN = $(SANITIZE)
endif
comma := ,

# The version, in one place: debian/changelog's first entry, for apxs and the package
# build alike (clinic_build_info{version}).
CLINIC_VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)

# src/core/: the httpd-free core, one static library linked by the module, the
# unit tests, the fuzz targets and tools/. Compiled without httpd's or APR's
# include paths: an httpd header there fails the build.
CORE_SRC    = $(wildcard src/core/*.c)
CORE_HDR    = $(wildcard src/core/*.h)
CORE_LIB    = src/core/libclinic-core.a
CORE_OBJ    = $(CORE_SRC:.c=.o)
CORE_LIBS   = -ljansson -lcrypto -lpthread
CORE_CFLAGS = -std=c99 -D_GNU_SOURCE $(WARN) -Werror -O1 -g -fPIC $(UNIT_SAN)

# src/*.c: the httpd glue, built by apxs with mod_clinic.c.
GLUE_SRC = $(wildcard src/*.c)
GLUE_HDR = $(wildcard src/*.h)
LIBS     = $(CORE_LIBS) -lpq -lcurl

# Unit tests and tools link the core (and libjwt: tokens minted, or compared with).
UNIT_CFLAGS = -std=c99 -D_GNU_SOURCE $(WARN) -Werror -O1 -g -Isrc/core $(UNIT_SAN)
UNIT_TESTS  = $(patsubst %.c,%,$(wildcard t/unit/test_*.c))
TOOL_LIBS   = $(CORE_LIB) -ljwt $(CORE_LIBS)

.PHONY: all deps run test test-unit test-alerts test-apache test-run fuzz farm failover bench install clean \
        FORCE deb test-package openapi-deps test-install deb-chroot test-asan test-layers

# Rebuild everything when the sanitizer setting changes (same output names).
.build-flags: FORCE
	@echo 'ASAN=$(filter 1,$(ASAN)) VERSION=$(CLINIC_VERSION)' | cmp -s - $@ || \
	    echo 'ASAN=$(filter 1,$(ASAN)) VERSION=$(CLINIC_VERSION)' > $@

all: mod_clinic.so tools/mkjwt tools/verifybench $(UNIT_TESTS)

src/core/%.o: src/core/%.c $(CORE_HDR) .build-flags
	$(CC) $(CORE_CFLAGS) -c -o $@ $<

$(CORE_LIB): $(CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# apxs echoes every libtool command: keep them in build.log, show warnings.
mod_clinic.so: mod_clinic.c $(GLUE_SRC) $(GLUE_HDR) $(CORE_HDR) $(CORE_LIB) .build-flags
	@echo "apxs -c mod_clinic.c src/*.c $(CORE_LIB) (log: build.log)"
	@$(APXS) -c -n clinic -o mod_clinic.la -Wc,-std=gnu99 -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql) $(addprefix -Wc$(comma),$(WARN)) \
	    $(APXS_SAN) -Wc,-DCLINIC_VERSION='\"$(CLINIC_VERSION)\"' -Isrc -Isrc/core mod_clinic.c $(GLUE_SRC) $(CORE_LIB) $(LIBS) > build.log 2>&1 || { cat build.log; exit 1; }
	@grep -E 'warning:|error:' build.log || true
	@cp .libs/mod_clinic.so $@.tmp && mv -f $@.tmp $@   # never rewrite a loaded .so in place

tools/mkjwt: tools/mkjwt.c $(CORE_LIB) $(CORE_HDR) .build-flags
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(TOOL_LIBS)

# CPU per never-seen token, the module's verifier against libjwt's (-O2 like the module).
tools/verifybench: tools/verifybench.c $(CORE_LIB) $(CORE_HDR) .build-flags
	$(CC) $(subst -O1,-O2,$(UNIT_CFLAGS)) -o $@ $< $(TOOL_LIBS)

# The bench's token minter and cost timer (bench/bench.pl).
bench/tokens: bench/tokens.c $(CORE_LIB) $(CORE_HDR) .build-flags
	$(CC) $(subst -O1,-O2,$(UNIT_CFLAGS)) -o $@ $< $(TOOL_LIBS)

t/unit/test_%: t/unit/test_%.c $(CORE_LIB) $(CORE_HDR) .build-flags
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(TOOL_LIBS) -lcmocka

deps:
	./scripts/deps.sh

# apxs leaves each file's object in .libs/ beside it; the core library is one file,
# mod_clinic.o the module record every file refers to.
test-layers: mod_clinic.so
	./scripts/layers.pl --record .libs/mod_clinic.o $(GLUE_SRC:src/%.c=src/.libs/%.o) $(CORE_LIB)

test-unit: $(UNIT_TESTS)
	./scripts/unit.sh $(UNIT_TESTS)

# The shipped Prometheus alerts: valid rules, and each fires on a series that
# should fire it and stays quiet on one that should not.
test-alerts:
	promtool check rules conf/prometheus/clinic-alerts.yml
	promtool test rules t/prometheus/clinic-alerts.test.yml

test-apache: mod_clinic.so tools/mkjwt openapi-deps
	CLINIC_ASAN=$(filter 1,$(ASAN)) ./scripts/test.sh

# The OpenAPI validators (npm, pinned by openapi/package-lock.json).
openapi-deps: openapi/node_modules/.package-lock.json
openapi/node_modules/.package-lock.json: openapi/package.json openapi/package-lock.json
	cd openapi && npm ci --no-audit --no-fund --loglevel=error

# The Debian package, built in a copy of the tree; lintian errors fail it.
deb: deps
	./scripts/deb.sh

# As root: the package built in a clean Debian 12 chroot holding only the Build-Depends
# (mmdebstrap from Debian's archive, ~2 min).
deb-chroot:
	./scripts/deb-chroot.sh

# As root: the package installed, serving the seeds on the stock Apache, purged (~60 s).
test-package: deps
	./scripts/package-test.sh

# make run as a newcomer meets it: a fresh clone of HEAD in a mode-0700
# folder, a free port, the printed curls answer 200 (~20 s, mostly the build).
test-run:
	./scripts/run-test.sh

# libFuzzer targets (clang); FUZZ_SECONDS each, 30 in make test. They link the
# same core, built again with coverage and sanitizers.
FUZZ_SECONDS ?= 120
FUZZ_CC      ?= clang
FUZZ_CFLAGS   = -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -std=c99 -D_GNU_SOURCE $(WARN)
FUZZ_LIB      = t/fuzz/bin/libclinic-core.a

t/fuzz/bin/core/%.o: src/core/%.c $(CORE_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_LIB): $(CORE_SRC:src/core/%.c=t/fuzz/bin/core/%.o)
	@rm -f $@
	$(AR) rcs $@ $^

fuzz: $(FUZZ_LIB)
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh

# Two nodes behind a mod_proxy_balancer front and one PostgreSQL: t/farm/*.t (~65 s).
farm: mod_clinic.so tools/mkjwt
	./scripts/farm-test.sh

# A primary and a synchronous standby, SIGKILL and promote under load; PgBouncer (~80 s).
failover: mod_clinic.so tools/mkjwt
	./scripts/failover-test.sh

# bench/cases.pl measured by bench/bench.pl into bench-results.json, rendered by
# bench/report.pl (BENCHMARKS.md). Measures; asserts nothing.
bench: deps
	$(MAKE) mod_clinic.so tools/mkjwt bench/tokens
	./scripts/bench.sh

# The sanitizer run of the suites that exercise the module's C code (the package, fuzz, farm
# and failover runs are left to make test): ASan/UBSan builds of the unit tests and the module,
# every report fails it; the tree is rebuilt without sanitizers afterwards.
# Left out of the sanitizer run: the two balancer tests (mod_proxy_hcheck, HAProxy) put load
# through a front for a minute each and exercise no module code that t/85_health.t does not;
# they keep the sanitizer run within make test's time.
ASAN_SKIP = t/86_balancer.t t/87_haproxy.t
test-asan: deps openapi-deps
	$(MAKE) ASAN=1 all
	$(MAKE) ASAN=1 test-unit
	CLINIC_TEST_SKIP="$(ASAN_SKIP)" $(MAKE) ASAN=1 test-apache
	$(MAKE) all

# The farm and failover tests do not preload the ASan runtime: skipped with ASAN=1.
test: deps
	$(MAKE) all
	$(MAKE) test-layers
	$(MAKE) test-unit
	$(MAKE) test-alerts
	$(MAKE) test-package
	$(MAKE) test-install
	$(MAKE) test-apache
	$(MAKE) test-run
	$(MAKE) fuzz FUZZ_SECONDS=30
	$(if $(filter 1,$(ASAN)),,$(MAKE) farm)
	$(if $(filter 1,$(ASAN)),,$(MAKE) failover)

PORT ?= 8080
run: deps
	$(MAKE) mod_clinic.so tools/mkjwt
	PORT=$(PORT) ./scripts/run.sh

# Where make install puts the module and clinic.{load,conf} (apxs's own by default).
LIBEXECDIR ?= $(shell $(APXS) -q LIBEXECDIR)
MODS_AVAILABLE ?= $(shell $(APXS) -q SYSCONFDIR)/mods-available

install: mod_clinic.so
	$(APXS) -S LIBEXECDIR="$(LIBEXECDIR)" -i -n clinic mod_clinic.la
	install -m 644 conf/clinic.load "$(MODS_AVAILABLE)/"
	@if [ -e "$(MODS_AVAILABLE)/clinic.conf" ] && ! cmp -s conf/clinic.conf "$(MODS_AVAILABLE)/clinic.conf"; then \
	    install -m 644 conf/clinic.conf "$(MODS_AVAILABLE)/clinic.conf.dist"; \
	    echo "install: $(MODS_AVAILABLE)/clinic.conf is kept as it is; the shipped one is clinic.conf.dist beside it"; \
	else \
	    echo "install -m 644 conf/clinic.conf $(MODS_AVAILABLE)/"; \
	    install -m 644 conf/clinic.conf "$(MODS_AVAILABLE)/"; \
	fi

# make install into a temporary tree, twice: an edited clinic.conf survives (~5 s).
test-install: mod_clinic.so
	./scripts/install-test.sh

clean:
	rm -rf .libs src/.libs *.la *.lo *.o *.slo src/*.lo src/*.o src/*.slo src/*.la \
	    src/core/*.o $(CORE_LIB) \
	    mod_clinic.so build.log .build-flags tools/mkjwt tools/verifybench bench/tokens $(UNIT_TESTS) t/fuzz/bin t/fuzz/crashes \
	    libapache2-mod-clinic_*.deb
