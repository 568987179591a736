# certguard: engine library, CLI, nginx dynamic modules, tests.
#
#   make            build/certguard and the nginx modules
#   make test       everything in t/ (prove), unit tests with ASan/UBSan, fuzz smoke
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each (default 60)
#   make bench      benchmarks (bench/), never part of the pass/fail suite

SHELL      := /bin/bash
CC         ?= cc

# Hardened like Debian's own packages: dpkg-buildflags with every hardening
# feature (stack protector, _FORTIFY_SOURCE=2, RELRO and BIND_NOW; PIE is
# gcc's default on Debian) for the engine, the CLI and the modules, in this
# build and in the package's.  Flags given on the command line or in the
# environment (debian/rules exports dpkg-buildflags' own) win.
export DEB_BUILD_MAINT_OPTIONS ?= hardening=+all
buildflag   = $(shell DEB_BUILD_MAINT_OPTIONS='$(DEB_BUILD_MAINT_OPTIONS)' \
              dpkg-buildflags --get $(1))
ifeq ($(origin CFLAGS),undefined)
CFLAGS     := $(call buildflag,CFLAGS)
endif
ifeq ($(origin CPPFLAGS),undefined)
CPPFLAGS   := $(call buildflag,CPPFLAGS)
endif
ifeq ($(origin LDFLAGS),undefined)
LDFLAGS    := $(call buildflag,LDFLAGS)
endif
CG_CFLAGS   = -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Wno-unused-parameter \
              -Wshadow -Isrc/engine
LIBS        = -lssl -lcrypto -lpcre2-8 -lmaxminddb -llmdb -lpsl
NGX_SRC    ?= /usr/share/nginx/src
B           = build

ENGINE_SRCS = $(sort $(wildcard src/engine/cg_*.c))
ENGINE_HDRS = $(wildcard src/engine/*.h)
ENGINE_OBJS = $(ENGINE_SRCS:src/engine/%.c=$(B)/obj/%.o)
UNIT_SRCS   = $(sort $(wildcard t/unit/*.c))
UNIT_BINS   = $(UNIT_SRCS:t/unit/%.c=$(B)/unit/%)
UNIT_ASAN   = $(UNIT_SRCS:t/unit/%.c=$(B)/unit-asan/%)
MODULE_SRCS = ngx_http_certguard_module.c $(wildcard src/nginx/*.c src/nginx/*.h)
MODULES     = $(B)/ngx_http_certguard_module.so \
              $(B)/ngx_stream_certguard_module.so

.PHONY: all deps cli modules unit test fuzz bench clean run stop install deb

all: cli modules

deps:
	./scripts/deps.sh

cli: $(B)/certguard

# A change of flags rebuilds what they went into (the file changes then).
FLAG_LIST  := $(B)/flags.list
$(shell mkdir -p $(B); echo $(CFLAGS) / $(CPPFLAGS) / $(LDFLAGS) \
    | cmp -s - $(FLAG_LIST) || echo $(CFLAGS) / $(CPPFLAGS) / $(LDFLAGS) \
    > $(FLAG_LIST))

$(B)/obj/%.o: src/engine/%.c $(ENGINE_HDRS) $(FLAG_LIST)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CG_CFLAGS) -c -o $@ $<

$(B)/libcertguard.a: $(ENGINE_OBJS)
	rm -f $@
	ar rcs $@ $^

$(B)/certguard: $(wildcard src/cli/*.c src/cli/*.h) $(B)/libcertguard.a \
               $(FLAG_LIST)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CG_CFLAGS) $(LDFLAGS) -o $@ \
	    $(filter %.c,$^) $(B)/libcertguard.a $(LIBS)

# The modules are built through Debian's nginx build files with Debian's own
# configure flags, so that load_module accepts them (same compat signature).
# config lists the sources when nginx's configure runs: a source added or
# removed must run it again, so the list is kept in a file that changes then.
SRC_LIST   := $(B)/sources.list
$(shell mkdir -p $(B); echo $(ENGINE_SRCS) $(MODULE_SRCS) | cmp -s - $(SRC_LIST) \
    || echo $(ENGINE_SRCS) $(MODULE_SRCS) > $(SRC_LIST))

# The hardening flags reach nginx's objs/Makefile as Debian's nginx passes
# them (conf_flags carries none).
$(B)/nginx/objs/Makefile: config $(SRC_LIST) $(FLAG_LIST)
	rm -rf $(B)/nginx
	mkdir -p $(B)
	cp -r $(NGX_SRC) $(B)/nginx
	cd $(B)/nginx && source ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt="$(CFLAGS) -fPIC $(CPPFLAGS)" \
	    --with-ld-opt="$(LDFLAGS) -fPIC" \
	    --with-stream=dynamic --with-stream_ssl_module \
	    --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	    || { tail -20 configure.log; exit 1; }

# Both modules compile the same engine objects in nginx's tree: one
# sub-make builds them together (two would race on the shared objects and
# could link a half-written one), behind a stamp both .so files depend on.
# A running nginx (make run, a test) maps build/*.so: copying over it in
# place crashes every worker (SIGBUS, then SIGSEGV in each respawned one),
# so a new copy is renamed over the old name and the old inode lives on.
$(B)/modules.stamp: $(B)/nginx/objs/Makefile $(MODULE_SRCS) $(ENGINE_SRCS) \
                    $(ENGINE_HDRS) src/nginx/ngx_certguard.map
	$(MAKE) -s -C $(B)/nginx -f objs/Makefile \
	    objs/ngx_http_certguard_module.so objs/ngx_stream_certguard_module.so
	for m in ngx_http_certguard_module.so ngx_stream_certguard_module.so; do \
	    cp $(B)/nginx/objs/$$m $(B)/.$$m.new && mv -f $(B)/.$$m.new $(B)/$$m \
	    || exit 1; \
	done
	touch $@

$(MODULES): $(B)/modules.stamp

modules: $(MODULES)

# Unit tests are C programs that print TAP; prove runs them with the .t files.
UNIT_HDRS   = $(wildcard t/unit/*.h)
$(B)/unit/%: t/unit/%.c $(UNIT_HDRS) $(B)/libcertguard.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CG_CFLAGS) -D_GNU_SOURCE -It/unit -o $@ $< $(B)/libcertguard.a $(LIBS)

SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
$(B)/unit-asan/%: t/unit/%.c $(UNIT_HDRS) $(ENGINE_SRCS) $(ENGINE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) $(CG_CFLAGS) -D_GNU_SOURCE -It/unit -o $@ $< $(ENGINE_SRCS) $(LIBS)

unit: $(UNIT_BINS) $(UNIT_ASAN)

test: all unit
	CERTGUARD_BUILD=$(abspath $(B)) ./scripts/test.sh

fuzz:
	./scripts/fuzz.sh $${FUZZ_SECONDS:-60}

bench: all
	./bench/run.sh

run: all
	./scripts/run.sh

stop:
	./scripts/run.sh stop

# Debian's layout: modules beside Debian's own, policies in /etc/certguard
# (existing files there are kept: they are the operator's).
DESTDIR    ?=
PREFIX     ?= /usr/local
MODDIR     ?= /usr/lib/nginx/modules
ETCDIR     ?= /etc/certguard

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MODDIR) $(DESTDIR)$(ETCDIR)/lists
	install -m 755 $(B)/certguard $(DESTDIR)$(PREFIX)/bin/certguard
	install -m 644 $(MODULES) $(DESTDIR)$(MODDIR)/
	for f in policies/*.policy policies/lists/* conf/*.conf; do \
	    t=$(DESTDIR)$(ETCDIR)/$${f#*/}; \
	    [ -e "$$t" ] || install -m 644 "$$f" "$$t"; \
	done

# Debian packages (debian/), built by scripts/deb.sh in a copy of the tree:
# $(B)/deb/*.deb.  They are rebuilt only when a file git knows changed
# (the tests and benchmarks are not in the packages).
ifneq ($(filter deb,$(MAKECMDGOALS)),)
DEB_INPUTS := $(filter-out t/% bench/%,$(wildcard \
                  $(shell git ls-files -co --exclude-standard 2>/dev/null)))
endif

deb: $(B)/deb/packages.stamp

$(B)/deb/packages.stamp: $(DEB_INPUTS)
	./scripts/deb.sh $(@D)
	touch $@

clean:
	rm -rf $(B)
