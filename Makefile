# mod_clinic: build with apxs, test with cmocka and Apache::Test.
#
#   make          build mod_clinic.so, the token tool and the unit tests
#   make run      install missing Debian packages, build, start a demo on 127.0.0.1:8080
#                 (PORT=8081 for another port)
#   make test     install missing Debian packages, build, run every test (SQLite + PostgreSQL)
#   make install  install the module and conf/clinic.{load,conf} for a2enmod
#   make fuzz     run the libFuzzer targets (FUZZ_SECONDS each, default 120)
#   make farm     two nodes behind a balancer: races, idempotency, a killed node, graceful restarts
#   make failover PostgreSQL primary + synchronous standby failover, PgBouncer (t/failover/*.t)
#   make bench    wrk on both routes against pgbench's ceiling and the static floor (BENCHMARKS.md)
#   make ASAN=1   the same with AddressSanitizer and UBSan
#   make deb      libapache2-mod-clinic_<version>_<arch>.deb (debian/, dh-apache2, lintian)
#   make test-package  build, install, serve, purge the .deb on the stock Apache (root)

APXS    ?= apxs
CC      ?= cc
WARN     = -Wall -Wextra
SRC      = src/add_and_link.c src/b64url.c src/cors.c src/datetime.c src/db.c src/idempotency.c src/jwk.c \
           src/metrics.c src/objectid.c src/purge.c src/request.c src/respond.c src/config.c src/storage.c src/token.c \
           src/validate.c src/visits.c \
           src/keyset.c src/remote.c src/audit.c src/authz.c src/claims.c
HDR      = $(wildcard src/*.h)
LIBS     = -ljansson -lcrypto -lpq -lcurl
SANITIZE = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

ifeq ($(ASAN),1)
APXS_SAN = $(addprefix -Wc$(comma),$(SANITIZE)) $(addprefix -Wl$(comma),$(SANITIZE))
UNIT_SAN = $(SANITIZE)
endif
comma := ,

UNIT_CFLAGS = -std=c99 -D_GNU_SOURCE $(WARN) -Werror -O1 -g -Isrc $(UNIT_SAN)
UNIT_TESTS  = t/unit/test_datetime t/unit/test_jwk t/unit/test_validate t/unit/test_token \
              t/unit/test_objectid \
              t/unit/test_claims

.PHONY: all deps run test test-unit test-apache test-run fuzz farm failover bench install clean \
        FORCE deb test-package openapi-deps

# Rebuild everything when the sanitizer setting changes (same output names).
.build-flags: FORCE
	@echo 'ASAN=$(filter 1,$(ASAN))' | cmp -s - $@ || echo 'ASAN=$(filter 1,$(ASAN))' > $@

all: mod_clinic.so tools/mkjwt tools/verifybench $(UNIT_TESTS)

# apxs echoes every libtool command: keep them in build.log, show warnings.
mod_clinic.so: mod_clinic.c $(SRC) $(HDR) .build-flags
	@echo "apxs -c mod_clinic.c src/*.c (log: build.log)"
	@$(APXS) -c -n clinic -o mod_clinic.la -Wc,-std=gnu99 -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql) $(addprefix -Wc$(comma),$(WARN)) \
	    $(APXS_SAN) -Isrc mod_clinic.c $(SRC) $(LIBS) > build.log 2>&1 || { cat build.log; exit 1; }
	@grep -E 'warning:|error:' build.log || true
	@cp .libs/mod_clinic.so $@.tmp && mv -f $@.tmp $@   # never rewrite a loaded .so in place

tools/mkjwt: tools/mkjwt.c src/b64url.c src/b64url.h .build-flags
	$(CC) $(UNIT_CFLAGS) -o $@ tools/mkjwt.c src/b64url.c -ljwt -ljansson -lcrypto

# CPU per never-seen token, the module's verifier against libjwt's (-O2 like the module).
tools/verifybench: tools/verifybench.c src/token.c src/keyset.c src/jwk.c src/b64url.c \
                   src/token.h src/keyset.h .build-flags
	$(CC) $(subst -O1,-O2,$(UNIT_CFLAGS)) -o $@ $(filter %.c,$^) -ljwt -ljansson -lcrypto -lpthread

t/unit/test_datetime: .build-flags t/unit/test_datetime.c src/datetime.c src/datetime.h
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter %.c,$^) -lcmocka
t/unit/test_jwk: .build-flags t/unit/test_jwk.c src/jwk.c src/b64url.c src/jwk.h src/b64url.h
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter %.c,$^) -ljansson -lcrypto -lcmocka
t/unit/test_validate: .build-flags t/unit/test_validate.c src/validate.c src/datetime.c src/validate.h
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter %.c,$^) -ljansson -lcmocka
t/unit/test_token: .build-flags t/unit/test_token.c src/token.c src/keyset.c src/jwk.c src/b64url.c \
                   src/token.h src/keyset.h
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter %.c,$^) -ljwt -ljansson -lcrypto -lcmocka -lpthread
t/unit/test_objectid: .build-flags t/unit/test_objectid.c src/objectid.c src/objectid.h
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter %.c,$^) -lcrypto -lcmocka -lpthread
t/unit/test_claims: .build-flags t/unit/test_claims.c src/claims.c src/claims.h
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter %.c,$^) -ljansson -lcmocka

deps:
	./scripts/deps.sh

test-unit: $(UNIT_TESTS)
	./scripts/unit.sh $(UNIT_TESTS)

test-apache: mod_clinic.so tools/mkjwt openapi-deps
	CLINIC_ASAN=$(filter 1,$(ASAN)) ./scripts/test.sh

# The OpenAPI validators (npm, pinned by openapi/package-lock.json).
openapi-deps: openapi/node_modules/.package-lock.json
openapi/node_modules/.package-lock.json: openapi/package.json openapi/package-lock.json
	cd openapi && npm ci --no-audit --no-fund --loglevel=error

# The Debian package, built in a copy of the tree; lintian errors fail it.
deb: deps
	./scripts/deb.sh

# As root: the package installed, serving the seeds on the stock Apache, purged (~60 s).
test-package: deps
	./scripts/package-test.sh

# make run as a newcomer meets it: a fresh clone of HEAD in a mode-0700
# folder, a free port, the printed curls answer 200 (~20 s, mostly the build).
test-run:
	./scripts/run-test.sh

# libFuzzer targets (clang); FUZZ_SECONDS each, 30 in make test.
FUZZ_SECONDS ?= 120
fuzz:
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
	$(MAKE) mod_clinic.so tools/mkjwt
	./scripts/bench.sh

# The farm and failover tests do not preload the ASan runtime: skipped with ASAN=1.
test: deps
	$(MAKE) all
	$(MAKE) test-unit
	$(MAKE) test-package
	$(MAKE) test-apache
	$(MAKE) test-run
	$(MAKE) fuzz FUZZ_SECONDS=30
	$(if $(filter 1,$(ASAN)),,$(MAKE) farm)
	$(if $(filter 1,$(ASAN)),,$(MAKE) failover)

PORT ?= 8080
run: deps
	$(MAKE) mod_clinic.so tools/mkjwt
	PORT=$(PORT) ./scripts/run.sh

install: mod_clinic.so
	$(APXS) -i -n clinic mod_clinic.la
	install -m 644 conf/clinic.load conf/clinic.conf "$$($(APXS) -q SYSCONFDIR)/mods-available/"

clean:
	rm -rf .libs src/.libs *.la *.lo *.o *.slo src/*.lo src/*.o src/*.slo src/*.la \
	    mod_clinic.so build.log .build-flags tools/mkjwt tools/verifybench $(UNIT_TESTS) t/fuzz/bin t/fuzz/crashes \
	    libapache2-mod-clinic_*.deb
