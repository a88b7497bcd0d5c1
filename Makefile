# social -- top-level Makefile.
#
# `make run` and `make check` work on a fresh Debian 12 machine: both install what is missing
# first (`make deps`). The extension has its own PGXS Makefile in extension/; servers for tests,
# benchmarks and the local stack are started and stopped only by tools/pg_harness.

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
export PG_CONFIG

CLANG_FORMAT ?= clang-format

# Extra options for tools/pg_harness, e.g. HARNESS_OPTS='--set shared_preload_libraries=social'.
HARNESS_OPTS ?=
HARNESS := bash tools/pg_harness

# Every Debian 12 package the project needs to build, test and run. Node.js and npm (for the
# compatibility test with the official client packages) are checked by command, not by package:
# a Node.js from elsewhere that brings its own npm is fine.
DEB_PACKAGES := \
	postgresql-15 postgresql-server-dev-15 postgresql-contrib libpq-dev \
	libwebsockets-dev libwebsockets-evlib-uv libhiredis-dev libnats-dev nats-server redis-server \
	protobuf-c-compiler libprotobuf-c-dev libsecp256k1-dev libuv1-dev libcmocka-dev \
	libjansson-dev libssl-dev pkg-config gcc make clang-format iproute2 curl

# C sources under clang-format: the extension, and the daemon and unit tests once they exist.
FORMAT_DIRS := $(wildcard extension daemon test/unit tools bench/presence)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := all

.PHONY: all install deps check run bench docker-check version-check guide-check format format-check clean help

all:
	$(MAKE) -C extension PG_CONFIG=$(PG_CONFIG)
	$(MAKE) -C daemon

# As root, or when the PostgreSQL directories are writable, no sudo; else sudo if there is one.
install: all
	@sudo=""; \
	if [ "$$(id -u)" != 0 ] && [ ! -w "$$($(PG_CONFIG) --pkglibdir)" ] \
		&& command -v sudo >/dev/null 2>&1; then sudo=sudo; fi; \
	echo "$${sudo:+$$sudo }$(MAKE) -C extension install"; \
	$$sudo $(MAKE) -C extension install PG_CONFIG=$(PG_CONFIG)

# Quick when everything is there: dpkg-query only, no apt-get update.
deps:
	@command -v dpkg-query >/dev/null 2>&1 || { \
		echo "deps: dpkg-query not found: this Makefile installs packages on Debian 12 only" >&2; \
		exit 1; }; \
	installed=" $$({ dpkg-query -W -f='$${Package} $${Status}\n' $(DEB_PACKAGES) 2>/dev/null || true; } \
		| awk '$$3 == "ok" && $$4 == "installed" { printf "%s ", $$1 }')"; \
	missing=(); \
	for pkg in $(DEB_PACKAGES); do \
		[[ $$installed == *" $$pkg "* ]] || missing+=("$$pkg"); \
	done; \
	command -v npm >/dev/null 2>&1 || missing+=(nodejs npm); \
	if [ $${#missing[@]} -eq 0 ]; then exit 0; fi; \
	echo "deps: installing $${missing[*]}"; \
	if [ "$$(id -u)" = 0 ]; then sudo=(); \
	elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); \
	else echo "deps: not root and no sudo; as root run: apt-get install $${missing[*]}" >&2; \
		exit 1; fi; \
	"$${sudo[@]}" apt-get update; \
	"$${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "$${missing[@]}"

# default_version in the control file and EXTVERSION in extension/Makefile must agree. EXTVERSION
# is read by make itself, so it may be computed.
version-check:
	@control=extension/social.control; \
	[ -f "$$control" ] || { echo "version-check: $$control not found" >&2; exit 1; }; \
	[ -f extension/Makefile ] || { echo "version-check: extension/Makefile not found" >&2; exit 1; }; \
	control_version=$$(sed -nE "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'([^']*)'.*/\1/p" "$$control"); \
	make_version=$$(printf '_print_extversion:\n\t@echo $$(EXTVERSION)\n' | \
		$(MAKE) -s --no-print-directory -C extension -f Makefile -f - \
			_print_extversion PG_CONFIG=$(PG_CONFIG)); \
	if [ -z "$$control_version" ] || [ "$$control_version" != "$$make_version" ]; then \
		echo "version-check: default_version '$$control_version' in $$control differs from" \
			"EXTVERSION '$$make_version' in extension/Makefile" >&2; \
		exit 1; \
	fi; \
	echo "version-check: $$control_version"

# The README's analyst queries are the ones test/regress/sql/analyst_questions.sql runs.
guide-check:
	@bash tools/check_guide_sql

# `install` builds the daemon too (all); the unit test binaries are built here, so a build error
# stops at once. The harness then runs every suite, the daemon's unit tests (make -C daemon
# check-unit) and its black-box suites (test/e2e, test/compat) included, under one summary.
check: deps
	@$(MAKE) --no-print-directory version-check
	@bash tools/check_layers
	@bash tools/check_guide_sql
	@$(MAKE) --no-print-directory install
	@$(MAKE) --no-print-directory -C daemon unit
	@$(HARNESS) $(HARNESS_OPTS) --check

# The local stack in the foreground, its cluster kept in .run/pg; Ctrl-C stops it.
run: deps
	@$(MAKE) --no-print-directory install
	@exec $(HARNESS) $(HARNESS_OPTS) --datadir .run/pg --run

bench: deps
	@[ -f bench/run.sh ] || { echo "bench: bench/run.sh does not exist: no benchmark to run yet" >&2; \
		exit 1; }
	@$(MAKE) --no-print-directory install
	@$(HARNESS) $(HARNESS_OPTS) --bench

# The images in docker/ built from a debootstrapped base and run with host networking, the compat
# test against the containerized sociald (tools/docker_check). Needs root and minutes; not part of
# `check`.
docker-check: deps
	@bash tools/docker_check

# Generated protobuf-c sources are left as protoc-c writes them.
format_files = $(if $(FORMAT_DIRS),$(shell find $(FORMAT_DIRS) -type f -name '*.[ch]' \
	! -name '*.pb-c.[ch]' ! -path '*/build/*' | LC_ALL=C sort))

format:
	@files="$(format_files)"; \
	[ -z "$$files" ] || $(CLANG_FORMAT) -i --style=file $$files

format-check:
	@bad=(); \
	for f in $(format_files); do \
		$(CLANG_FORMAT) --style=file "$$f" | cmp -s - "$$f" || bad+=("$$f"); \
	done; \
	if [ $${#bad[@]} -gt 0 ]; then \
		echo "format-check: these files differ from $(CLANG_FORMAT) --style=file (run make format):" >&2; \
		printf '  %s\n' "$${bad[@]}" >&2; \
		exit 1; \
	fi

clean:
	@if [ -f extension/Makefile ]; then $(MAKE) -C extension clean PG_CONFIG=$(PG_CONFIG); fi
	@if [ -f daemon/Makefile ]; then $(MAKE) -C daemon clean; fi
	rm -rf build tmp_check log \
		test/regress/results test/regress/regression.diffs test/regress/regression.out \
		test/isolation/output_iso

help:
	@echo 'make deps          install missing Debian packages (apt-get)'
	@echo 'make [all]         build the extension, sociald and socialctl'
	@echo 'make install       install the extension into PostgreSQL 15'
	@echo 'make check         build, install, run every test against a throw-away server'
	@echo 'make run           local stack in the foreground (cluster in .run/pg), Ctrl-C stops it'
	@echo 'make bench         benchmarks (bench/run.sh) against a throw-away server'
	@echo 'make docker-check  build the docker/ images, run the stack, compat test (root, minutes)'
	@echo 'make format        clang-format the C sources in place'
	@echo 'make format-check  list C sources that are not clang-formatted'
	@echo 'make version-check control file and extension/Makefile agree on the version'
	@echo 'make guide-check   the README'"'"'s analyst queries are the ones the regress test runs'
	@echo 'make clean         remove build outputs (extension and daemon)'
